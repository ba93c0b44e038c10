"""A circuit breaker for one upstream (each `BuyWithPrimeClient` has one for the GraphQL API).

    closed      calls go through. FAILURE_THRESHOLD consecutive calls that ended transient after
                their own retries (throttling, 5xx, network) open it; a success or a permanent
                answer (4xx other than 429, a GraphQL error other than throttling) resets the count.
    open        calls fail at once with `CircuitOpenError` (transient: the caller sends the event
                back to the queue) and make no HTTP request, for COOL_DOWN_SECONDS.
    half-open   after the cool-down exactly one call, the probe, goes through; the others still fail
                fast. The probe's success closes the circuit, its transient failure re-opens it for
                another cool-down.

A call that neither failed transiently nor got an answer (out of time before its first request, an
unexpected exception) changes nothing; if it was the probe, the next call probes. The outcome of a
call admitted before the circuit last opened is stale and ignored. Thread-safe (hydration calls run
in a thread pool); the clock is injectable. Metrics: `CircuitOpened` (each opening, re-openings
included) and `CircuitShortCircuited` (each call refused).

The token endpoint has no breaker: a refresh must never be skipped because of one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum

from shared.buy_with_prime import BuyWithPrimeError, OutOfTimeError, TransientBuyWithPrimeError
from shared.observability import count, logger

# Consecutive calls (not attempts: each call has already retried) that ended transient: then it opens.
FAILURE_THRESHOLD = 5
# How long an open circuit fails fast before it lets one probe through (seconds, monotonic clock).
COOL_DOWN_SECONDS = 30.0


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitOpenError(TransientBuyWithPrimeError):
    """The upstream's circuit is open: the call was refused without any request. Try again later."""

    def __init__(self, name: str, retry_in: float) -> None:
        super().__init__(f"{name} circuit open: failing fast (next probe in {max(0.0, retry_in):.0f} s)")
        self.name = name
        self.retry_in = max(0.0, retry_in)


class Outcome(Enum):
    SUCCESS = "success"  # an answer, good or a permanent refusal: the upstream is up
    FAILURE = "failure"  # transient after the call's own retries
    NEUTRAL = "neutral"  # says nothing about the upstream


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; hand it back to `settle` with the call's outcome."""

    probe: bool
    generation: int


def classify(error: BaseException | None) -> Outcome:
    """What a call's result says about the upstream (None: it returned)."""
    if error is None:
        return Outcome.SUCCESS
    if isinstance(error, OutOfTimeError):
        return Outcome.FAILURE if error.attempts_made else Outcome.NEUTRAL
    if isinstance(error, TransientBuyWithPrimeError):
        return Outcome.FAILURE
    if isinstance(error, BuyWithPrimeError):
        return Outcome.SUCCESS
    return Outcome.NEUTRAL


class CircuitBreaker:
    """Closed / open / half-open for one upstream; see the module docstring."""

    def __init__(
        self,
        name: str = "graphql",
        *,
        failure_threshold: int = FAILURE_THRESHOLD,
        cool_down_seconds: float = COOL_DOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cool_down_seconds < 0:
            raise ValueError("failure_threshold must be >= 1 and cool_down_seconds >= 0")
        self.name = name
        self._threshold = failure_threshold
        self.cool_down_seconds = cool_down_seconds
        self._clock = self.clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._generation = 0  # incremented at each opening: permits from before are stale

    @property
    def state(self) -> CircuitState:
        """The state as the next call would find it (open with the cool-down over reads half-open)."""
        with self._lock:
            if self._state is CircuitState.OPEN and self._cooled_down():
                return CircuitState.HALF_OPEN
            return self._state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    def call[T](self, fn: Callable[[], T]) -> T:
        """Run `fn` if the circuit lets it (else raise CircuitOpenError without running it)."""
        permit = self.admit()
        try:
            result = fn()
        except BaseException as error:
            self.settle(permit, classify(error))
            raise
        self.settle(permit, Outcome.SUCCESS)
        return result

    def admit(self) -> Permit:
        """A permit for one call, or CircuitOpenError (counted) while open or while a probe runs."""
        with self._lock:
            if self._state is CircuitState.OPEN and self._cooled_down():
                self._state = CircuitState.HALF_OPEN
                self._probe_in_flight = False
            if self._state is CircuitState.CLOSED:
                return Permit(probe=False, generation=self._generation)
            if self._state is CircuitState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                return Permit(probe=True, generation=self._generation)
            is_open = self._state is CircuitState.OPEN
            retry_in = self._opened_at + self.cool_down_seconds - self._clock() if is_open else 0.0
        count("CircuitShortCircuited")
        raise CircuitOpenError(self.name, retry_in)

    def settle(self, permit: Permit, outcome: Outcome) -> None:
        """Record the outcome of the call made under `permit`."""
        opened = closed = False
        with self._lock:
            if permit.probe:
                self._probe_in_flight = False
                if outcome is Outcome.SUCCESS:
                    self._state, self._failures, closed = CircuitState.CLOSED, 0, True
                elif outcome is Outcome.FAILURE:
                    self._open()
                    opened = True
            elif self._state is CircuitState.CLOSED and permit.generation == self._generation:
                if outcome is Outcome.SUCCESS:
                    self._failures = 0
                elif outcome is Outcome.FAILURE:
                    self._failures += 1
                    if self._failures >= self._threshold:
                        self._open()
                        opened = True
            failures = self._failures
        if opened:
            count("CircuitOpened")
            logger.warning(
                "circuit opened: failing fast",
                extra={
                    "upstream": self.name,
                    "consecutive_failures": failures,
                    "cool_down_seconds": self.cool_down_seconds,
                },
            )
        elif closed:
            logger.info("circuit closed: the probe succeeded", extra={"upstream": self.name})

    def _open(self) -> None:  # with the lock held
        self._state = CircuitState.OPEN
        self._opened_at = self._clock()
        self._generation += 1

    def _cooled_down(self) -> bool:  # with the lock held
        return self._clock() - self._opened_at >= self.cool_down_seconds
