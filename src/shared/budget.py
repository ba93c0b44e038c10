"""One time budget for every timeout, retry, lease and wait of both functions.

Every figure below is derived from the constants the code uses (the HTTP client's timeouts,
attempts and backoff; the token store's lease and store reserve), and every wait or retry is also
bounded by the invoking Lambda's remaining time (`Deadline.from_context`). `make bench` prints it.

    attempt            = connect timeout + read timeout            (a request is never cut short)
    worst request      = attempts x attempt + (attempts - 1) x backoff cap
    worst refresh      = worst token request + store reserve       (redeem, then store the pair)
    lease              = min(worst refresh, time the holder has left) + clock skew
                         strictly longer than anything its holder can spend on the refresh
    refresh ahead      > longest lease: while one holder's lease runs out (a killed container),
                         the stored access token is still valid for everyone else

An attempt starts only when its whole timeout fits in what is left, so a request that Buy with
Prime may be answering is never abandoned by a Lambda timeout.

A GraphQL `Retry-After` may stretch one backoff past the backoff cap (then "worst request" above
is exceeded for GraphQL, never for the token endpoint): bounded by the deadline, or by
`shared.buy_with_prime.MAX_RETRY_AFTER_SECONDS` when there is none.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class HttpBudget:
    """One upstream's timeouts and retries (seconds)."""

    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    attempts: int = 4
    backoff_base: float = 0.2
    backoff_cap: float = 2.0

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    @property
    def attempt_seconds(self) -> float:
        return self.connect_timeout + self.read_timeout

    @property
    def worst_case_seconds(self) -> float:
        return self.attempts * self.attempt_seconds + (self.attempts - 1) * self.backoff_cap


@dataclass(frozen=True)
class TimeBudget:
    token: HttpBudget = field(default_factory=HttpBudget)
    graphql: HttpBudget = field(default_factory=HttpBudget)
    # Kept after a redeem to store the new pair (DynamoDB calls, retried with their own backoff).
    store_reserve_seconds: float = 6.0
    store_backoff_cap: float = 1.0
    store_calls: int = 4  # each is botocore's own attempts; then the pair goes to the rescue item
    # Lambdas' clocks may disagree this much about when a lease ends.
    clock_skew_seconds: float = 2.0
    # Kept back from the Lambda's remaining time: answer, log and flush metrics before the kill.
    lambda_margin_seconds: float = 1.0
    # A token is refreshed this long (plus up to `refresh_jitter_seconds`, per container) before
    # it expires, and handed out only while valid for at least `min_validity_seconds`.
    refresh_ahead_seconds: int = 180
    refresh_jitter_seconds: int = 60
    min_validity_seconds: int = 30
    # Waiting for another container's refresh: reads every `poll_seconds`, for at most this long.
    max_wait_seconds: float = 10.0
    poll_seconds: float = 0.1

    @property
    def worst_case_refresh_seconds(self) -> float:
        return self.token.worst_case_seconds + self.store_reserve_seconds

    @property
    def longest_lease_seconds(self) -> float:
        return self.worst_case_refresh_seconds + self.clock_skew_seconds

    def lease_seconds(self, deadline: Deadline) -> int:
        """How long a refresh lease taken now is held: past anything its holder can still spend."""
        spend = min(self.worst_case_refresh_seconds, max(0.0, deadline.remaining()))
        return math.ceil(spend + self.clock_skew_seconds) + 1

    def check(self) -> None:
        """The invariants the design rests on; raised at start-up, never discovered in production."""
        if self.refresh_ahead_seconds <= self.longest_lease_seconds + self.min_validity_seconds:
            raise ValueError("refresh_ahead_seconds must exceed the longest lease plus the minimum validity")


DEFAULT_BUDGET = TimeBudget()


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock by which the work must be done."""

    at: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    @classmethod
    def from_context(cls, context: Any, budget: TimeBudget = DEFAULT_BUDGET, fallback: float = 60.0) -> Deadline:
        """The invocation's remaining time less the margin; `fallback` seconds without a Lambda context."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        seconds = remaining() / 1000 if callable(remaining) else fallback
        return cls.after(seconds - budget.lambda_margin_seconds)

    def remaining(self) -> float:
        return self.at - self.clock()

    def fits(self, seconds: float) -> bool:
        return self.remaining() >= seconds

    def less(self, seconds: float) -> Deadline:
        """The same deadline with `seconds` kept back for what must follow."""
        return Deadline(self.at - seconds, self.clock)

    def sleep_within(self, seconds: float, sleep: Callable[[float], None] = time.sleep) -> bool:
        """Sleep `seconds` if that leaves time; False (no sleep) when it would not."""
        if not self.fits(seconds):
            return False
        sleep(seconds)
        return True
