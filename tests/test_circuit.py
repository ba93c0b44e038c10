"""The GraphQL circuit breaker: its state machine on a fake clock, thread safety, and the client wired to it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import requests

from sandbox.server import BuyWithPrimeSandbox
from shared import circuit
from shared.budget import Deadline, HttpBudget
from shared.buy_with_prime import (
    BuyWithPrimeClient,
    GraphQLError,
    OutOfTimeError,
    ThrottledError,
    TokenEndpointError,
    TransientBuyWithPrimeError,
)
from shared.circuit import (
    COOL_DOWN_SECONDS,
    FAILURE_THRESHOLD,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    Outcome,
)
from shared.models import ClientCredentials
from tests.conftest import CLIENT_ID, CLIENT_SECRET

INSTALLATION = "amzn1.bwp.installation.circuit"
CREDENTIALS = ClientCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)  # type: ignore[arg-type]
QUERY = "query { buyWithPrimeStore { siteId } }"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("graphql", clock=clock)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    lock = threading.Lock()

    def record(name: str, value: int = 1) -> None:
        with lock:
            names.append(name)

    monkeypatch.setattr(circuit, "count", record)
    return names


def _state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state  # a call, so that mypy does not narrow the property from one assertion to the next


def _fail() -> None:
    raise TransientBuyWithPrimeError("GraphQL API unavailable after retries")


def _ok() -> str:
    return "ok"


def _raiser(error: Exception) -> Callable[[], None]:
    def call() -> None:
        raise error

    return call


def _fail_times(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(TransientBuyWithPrimeError):
            breaker.call(_fail)


def _open(breaker: CircuitBreaker) -> None:
    _fail_times(breaker, FAILURE_THRESHOLD)
    assert _state(breaker) is CircuitState.OPEN


def _refused(breaker: CircuitBreaker, fn: Callable[[], object] = _ok) -> CircuitOpenError:
    with pytest.raises(CircuitOpenError) as refused:
        breaker.call(fn)
    return refused.value


def _threads(count: int, target: Callable[[], None], name: str = "worker") -> None:
    pool = [threading.Thread(target=target, name=f"{name}-{n}") for n in range(count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)


# --- the state machine ----------------------------------------------------------------------------------------------


def test_it_opens_after_n_consecutive_transient_calls(breaker: CircuitBreaker, counted: list[str]) -> None:
    for failures in range(1, FAILURE_THRESHOLD):
        _fail_times(breaker, 1)
        assert _state(breaker) is CircuitState.CLOSED and breaker.consecutive_failures == failures
    assert "CircuitOpened" not in counted
    _fail_times(breaker, 1)
    assert _state(breaker) is CircuitState.OPEN and counted == ["CircuitOpened"]


def test_an_open_circuit_fails_fast_without_running_the_call(
    breaker: CircuitBreaker, clock: FakeClock, counted: list[str]
) -> None:
    _open(breaker)
    ran: list[int] = []
    clock.advance(COOL_DOWN_SECONDS - 1)
    refused = _refused(breaker, lambda: ran.append(1))
    assert ran == []
    assert isinstance(refused, TransientBuyWithPrimeError) and refused.transient  # the event goes back to the queue
    assert refused.retry_in == pytest.approx(1.0)
    assert counted.count("CircuitShortCircuited") == 1


def test_after_the_cool_down_one_probe_goes_through_and_its_success_closes(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _open(breaker)
    clock.advance(COOL_DOWN_SECONDS)
    assert _state(breaker) is CircuitState.HALF_OPEN
    refused_meanwhile: list[CircuitOpenError] = []

    def probe() -> str:  # while the probe is in flight, every other call still fails fast
        refused_meanwhile.extend([_refused(breaker), _refused(breaker)])
        return "probed"

    assert breaker.call(probe) == "probed" and len(refused_meanwhile) == 2
    assert _state(breaker) is CircuitState.CLOSED and breaker.consecutive_failures == 0
    assert breaker.call(_ok) == "ok"


def test_a_failed_probe_reopens_for_another_cool_down(
    breaker: CircuitBreaker, clock: FakeClock, counted: list[str]
) -> None:
    _open(breaker)
    clock.advance(COOL_DOWN_SECONDS + 5)
    with pytest.raises(TransientBuyWithPrimeError) as failed:
        breaker.call(_fail)
    assert not isinstance(failed.value, CircuitOpenError)  # the probe ran and failed
    assert _state(breaker) is CircuitState.OPEN and counted.count("CircuitOpened") == 2
    clock.advance(COOL_DOWN_SECONDS - 0.5)  # the new cool-down counts from the failed probe
    _refused(breaker)
    clock.advance(0.5)
    assert breaker.call(_ok) == "ok" and _state(breaker) is CircuitState.CLOSED


def test_a_probe_that_says_nothing_lets_the_next_call_probe(breaker: CircuitBreaker, clock: FakeClock) -> None:
    _open(breaker)
    clock.advance(COOL_DOWN_SECONDS)
    with pytest.raises(OutOfTimeError):
        breaker.call(_raiser(OutOfTimeError("no time for attempt 1", attempts_made=0)))
    assert _state(breaker) is CircuitState.HALF_OPEN
    assert breaker.call(_ok) == "ok" and _state(breaker) is CircuitState.CLOSED


@pytest.mark.parametrize(
    "permanent",
    [
        GraphQLError([{"message": "no", "extensions": {"classification": {"type": "AccessDeniedError"}}}]),
        TokenEndpointError(400, "invalid_request"),
    ],
)
def test_successes_and_permanent_answers_reset_the_count(breaker: CircuitBreaker, permanent: Exception) -> None:
    for reset in (_ok, _raiser(permanent)):
        _fail_times(breaker, FAILURE_THRESHOLD - 1)
        try:
            breaker.call(reset)
        except type(permanent):
            pass
        assert breaker.consecutive_failures == 0
    assert _state(breaker) is CircuitState.CLOSED


def test_calls_that_say_nothing_about_the_upstream_neither_count_nor_reset(breaker: CircuitBreaker) -> None:
    _fail_times(breaker, FAILURE_THRESHOLD - 1)
    with pytest.raises(ValueError, match="a bug"):
        breaker.call(_raiser(ValueError("a bug, not the upstream")))
    with pytest.raises(OutOfTimeError):
        breaker.call(_raiser(OutOfTimeError("no time for attempt 1", attempts_made=0)))
    assert breaker.consecutive_failures == FAILURE_THRESHOLD - 1
    # out of time after a failed attempt is a transient failure of the upstream
    with pytest.raises(OutOfTimeError):
        breaker.call(_raiser(OutOfTimeError("no time for attempt 2", attempts_made=1)))
    assert _state(breaker) is CircuitState.OPEN


def test_a_call_admitted_before_the_circuit_opened_does_not_decide_its_state(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    early = breaker.admit()
    _open(breaker)
    breaker.settle(early, Outcome.SUCCESS)  # a slow call that started before the outage
    assert _state(breaker) is CircuitState.OPEN
    clock.advance(COOL_DOWN_SECONDS)
    probe = breaker.admit()
    assert probe.probe
    breaker.settle(early, Outcome.FAILURE)
    assert _state(breaker) is CircuitState.HALF_OPEN  # still waiting for the probe
    breaker.settle(probe, Outcome.SUCCESS)
    assert _state(breaker) is CircuitState.CLOSED
    breaker.settle(early, Outcome.FAILURE)
    assert breaker.consecutive_failures == 0


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)


# --- thread safety --------------------------------------------------------------------------------------------------


def test_many_threads_after_the_cool_down_let_exactly_one_probe_through(
    breaker: CircuitBreaker, clock: FakeClock, counted: list[str]
) -> None:
    _open(breaker)
    clock.advance(COOL_DOWN_SECONDS)
    threads = 32
    start = threading.Barrier(threads)
    lock = threading.Lock()
    everyone_else_refused = threading.Event()
    probes: list[str] = []
    refused: list[CircuitOpenError] = []
    errors: list[BaseException] = []

    def probe() -> str:
        with lock:
            probes.append(threading.current_thread().name)
        everyone_else_refused.wait(timeout=10)  # in flight until all the others were refused
        return "ok"

    def worker() -> None:
        start.wait(timeout=10)
        try:
            breaker.call(probe)
        except CircuitOpenError as error:
            with lock:
                refused.append(error)
                if len(refused) == threads - 1:
                    everyone_else_refused.set()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            with lock:
                errors.append(error)

    _threads(threads, worker, "hydrate")
    assert errors == [] and len(probes) == 1 and len(refused) == threads - 1
    assert _state(breaker) is CircuitState.CLOSED
    assert counted.count("CircuitShortCircuited") == threads - 1


def test_concurrent_failures_open_the_circuit_once(breaker: CircuitBreaker, counted: list[str]) -> None:
    threads = 4 * FAILURE_THRESHOLD
    in_flight = threading.Barrier(threads)

    def fail_together() -> None:
        in_flight.wait(timeout=10)  # all admitted while closed, all failing at once
        _fail()

    def worker() -> None:
        with pytest.raises(TransientBuyWithPrimeError):
            breaker.call(fail_together)

    _threads(threads, worker)
    assert _state(breaker) is CircuitState.OPEN and counted.count("CircuitOpened") == 1


def test_concurrent_outcomes_are_all_counted(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=10**6, clock=clock)
    threads, each = 8, 250
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait(timeout=10)
        for _ in range(each):
            breaker.settle(breaker.admit(), Outcome.FAILURE)

    _threads(threads, worker)
    assert breaker.consecutive_failures == threads * each


# --- wired into the client ------------------------------------------------------------------------------------------


@pytest.fixture
def client(sandbox: BuyWithPrimeSandbox, breaker: CircuitBreaker) -> BuyWithPrimeClient:
    budget = HttpBudget(connect_timeout=1.0, read_timeout=1.0, attempts=2)
    return BuyWithPrimeClient(
        sandbox.token_url,
        sandbox.graphql_url,
        session=requests.Session(),
        sleep=lambda _: None,
        token_budget=budget,
        graphql_budget=budget,
        graphql_circuit=breaker,
    )


def _access_token(sandbox: BuyWithPrimeSandbox, installation: str = INSTALLATION) -> str:
    return str(sandbox.issue_tokens(installation)["access_token"])


def _outage(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, token: str, calls: int = FAILURE_THRESHOLD
) -> None:
    """`calls` whole calls that end transient (each after its 2 attempts)."""
    sandbox.fail_next("graphql", 503, times=2 * calls)
    for _ in range(calls):
        with pytest.raises(TransientBuyWithPrimeError) as failed:
            client.graphql(token, INSTALLATION, QUERY)
        assert not isinstance(failed.value, CircuitOpenError)


def test_the_client_counts_whole_calls_not_attempts_and_a_permanent_error_resets(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, breaker: CircuitBreaker
) -> None:
    token = _access_token(sandbox)
    _outage(sandbox, client, token, FAILURE_THRESHOLD - 1)
    assert sandbox.calls["graphql"] == 2 * (FAILURE_THRESHOLD - 1)  # more failed attempts than the threshold
    assert _state(breaker) is CircuitState.CLOSED
    with pytest.raises(GraphQLError):
        client.graphql("Atza|not-a-token", INSTALLATION, QUERY)  # AccessDeniedError: Buy with Prime answered
    assert breaker.consecutive_failures == 0


def test_an_open_circuit_sends_no_request_a_failed_probe_reopens_and_a_good_one_closes(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, breaker: CircuitBreaker, clock: FakeClock
) -> None:
    token = _access_token(sandbox)
    _outage(sandbox, client, token)
    assert client.graphql_circuit is breaker and _state(breaker) is CircuitState.OPEN
    for probe_fails in (True, False):
        before = sandbox.calls["graphql"]
        for _ in range(3):
            with pytest.raises(CircuitOpenError):
                client.graphql(token, INSTALLATION, QUERY)
        assert sandbox.calls["graphql"] == before  # zero HTTP requests while open
        clock.advance(COOL_DOWN_SECONDS)
        if probe_fails:
            _outage(sandbox, client, token, 1)  # the probe fails on both its attempts
            assert _state(breaker) is CircuitState.OPEN
    assert "siteId" in client.graphql(token, INSTALLATION, QUERY)["buyWithPrimeStore"]  # Buy with Prime is back
    assert sandbox.calls["graphql"] == before + 1 and _state(breaker) is CircuitState.CLOSED


def test_no_time_for_a_first_attempt_does_not_count_against_the_upstream(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, breaker: CircuitBreaker
) -> None:
    token = _access_token(sandbox)
    for _ in range(FAILURE_THRESHOLD + 1):
        with pytest.raises(OutOfTimeError):
            client.graphql(token, INSTALLATION, QUERY, deadline=Deadline(at=1.0, clock=lambda: 0.0))
    assert sandbox.calls["graphql"] == 0
    assert _state(breaker) is CircuitState.CLOSED and breaker.consecutive_failures == 0


def test_an_outage_stops_every_installation_but_not_the_token_endpoint(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, breaker: CircuitBreaker
) -> None:
    _outage(sandbox, client, _access_token(sandbox))
    other = "amzn1.bwp.installation.other"
    with pytest.raises(CircuitOpenError):
        client.graphql(_access_token(sandbox, other), other, QUERY)
    assert _state(client.tenant_circuit(INSTALLATION)) is CircuitState.CLOSED  # 5xx are not the tenant's
    tokens = client.refresh(CREDENTIALS, str(sandbox.issue_tokens(INSTALLATION)["refresh_token"]))
    assert tokens.access_token.get_secret_value() and _state(breaker) is CircuitState.OPEN


def test_each_client_gets_its_own_breaker_by_default(sandbox: BuyWithPrimeSandbox) -> None:
    first, second = (
        BuyWithPrimeClient(sandbox.token_url, sandbox.graphql_url, session=requests.Session()) for _ in range(2)
    )
    assert first.graphql_circuit is not second.graphql_circuit
    assert _state(first.graphql_circuit) is CircuitState.CLOSED


def test_throttling_stops_only_the_throttled_installation(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, breaker: CircuitBreaker, clock: FakeClock
) -> None:
    """One merchant's flash sale opens that installation's own breaker; the upstream's stays closed."""
    hot = "amzn1.bwp.installation.hot"
    hot_token, quiet_token = _access_token(sandbox, hot), _access_token(sandbox)
    sandbox.throttle_installation(hot)
    for _ in range(FAILURE_THRESHOLD):
        with pytest.raises(ThrottledError):
            client.graphql(hot_token, hot, QUERY)
    assert _state(client.tenant_circuit(hot)) is CircuitState.OPEN
    assert _state(breaker) is CircuitState.CLOSED and breaker.consecutive_failures == 0
    before = sandbox.calls["graphql"]
    with pytest.raises(CircuitOpenError):
        client.graphql(hot_token, hot, QUERY)  # no request for the throttled installation
    assert "siteId" in client.graphql(quiet_token, INSTALLATION, QUERY)["buyWithPrimeStore"]
    assert sandbox.calls["graphql"] == before + 1
    sandbox.throttle_installation(hot, throttled=False)
    clock.advance(COOL_DOWN_SECONDS)
    client.graphql(hot_token, hot, QUERY)  # its probe: the sale is over
    assert _state(client.tenant_circuit(hot)) is CircuitState.CLOSED
