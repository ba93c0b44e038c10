"""The Buy with Prime client: retries with backoff where safe, typed errors where not."""

from __future__ import annotations

import socket
from email.utils import formatdate

import pytest
import requests

from sandbox.server import BuyWithPrimeSandbox
from shared import buy_with_prime
from shared.budget import Deadline, HttpBudget
from shared.buy_with_prime import (
    MAX_RETRY_AFTER_SECONDS,
    BuyWithPrimeClient,
    GraphQLError,
    InvalidGrantError,
    TokenEndpointError,
    TransientBuyWithPrimeError,
    retry_after_seconds,
)
from shared.models import ClientCredentials
from tests.conftest import CLIENT_ID, CLIENT_SECRET

INSTALLATION = "amzn1.bwp.installation.client"
CREDENTIALS = ClientCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)  # type: ignore[arg-type]


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def client(sandbox: BuyWithPrimeSandbox, slept: list[float]) -> BuyWithPrimeClient:
    return BuyWithPrimeClient(
        sandbox.token_url,
        sandbox.graphql_url,
        session=requests.Session(),
        api_version="2024-11-01",
        sleep=slept.append,
        token_budget=HttpBudget(connect_timeout=1.0, read_timeout=1.0),
        graphql_budget=HttpBudget(connect_timeout=1.0, read_timeout=1.0),
    )


def _access_token(sandbox: BuyWithPrimeSandbox) -> str:
    return str(sandbox.issue_tokens(INSTALLATION)["access_token"])


def test_refresh_is_retried_on_throttling_and_5xx_with_growing_jittered_backoff(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, slept: list[float]
) -> None:
    refresh_token = str(sandbox.issue_tokens(INSTALLATION)["refresh_token"])
    sandbox.fail_next("token", 429)
    sandbox.fail_next("token", 503)
    tokens = client.refresh(CREDENTIALS, refresh_token)
    assert tokens.access_token.get_secret_value()
    assert len(slept) == 2
    assert 0 <= slept[0] <= 0.2 and 0 <= slept[1] <= 0.4


def test_retries_stop_after_the_budget(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, slept: list[float]
) -> None:
    sandbox.fail_next("token", 500, times=10)
    with pytest.raises(TransientBuyWithPrimeError):
        client.refresh(CREDENTIALS, "Atzr|whatever")
    assert len(slept) == 3  # four attempts, three waits


def test_invalid_grant_is_typed_and_not_retried(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, slept: list[float]
) -> None:
    with pytest.raises(InvalidGrantError) as refused:
        client.refresh(CREDENTIALS, "Atzr|never-issued")
    assert refused.value.error_code == "invalid_grant"
    assert slept == []


def test_bad_client_credentials_are_a_token_endpoint_error(client: BuyWithPrimeClient) -> None:
    wrong = ClientCredentials(client_id=CLIENT_ID, client_secret="wrong")  # type: ignore[arg-type]
    with pytest.raises(TokenEndpointError) as refused:
        client.refresh(wrong, "Atzr|x")
    assert refused.value.status == 401
    assert "wrong" not in str(refused.value)


def test_a_token_read_timeout_is_not_retried(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, slept: list[float]
) -> None:
    # the server may have redeemed the refresh token already: a retry would present a spent one
    refresh_token = str(sandbox.issue_tokens(INSTALLATION)["refresh_token"])
    sandbox.latency("token", 1.5)
    with pytest.raises(TransientBuyWithPrimeError):
        client.refresh(CREDENTIALS, refresh_token)
    assert slept == []


def test_connection_refused_is_retried_because_nothing_was_sent(slept: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = BuyWithPrimeClient(
        f"http://127.0.0.1:{port}/token",
        f"http://127.0.0.1:{port}/graphql",
        session=requests.Session(),
        sleep=slept.append,
    )
    with pytest.raises(TransientBuyWithPrimeError):
        dead.refresh(CREDENTIALS, "Atzr|x")
    assert len(slept) == 3


def test_graphql_sends_the_partner_headers(sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient) -> None:
    data = client.graphql(
        _access_token(sandbox), INSTALLATION, "query BuyWithPrimeStore { buyWithPrimeStore { siteId widgetId } }"
    )
    assert set(data["buyWithPrimeStore"]) == {"siteId", "widgetId"}
    assert "2024-11-01" in sandbox.api_versions


def test_graphql_throttling_error_in_a_200_is_retried(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, slept: list[float]
) -> None:
    sandbox.throttle_next(times=2)
    data = client.graphql(_access_token(sandbox), INSTALLATION, "query { buyWithPrimeStore { siteId } }")
    assert "siteId" in data["buyWithPrimeStore"]
    assert len(slept) == 2


def test_graphql_errors_in_a_200_are_typed(sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient) -> None:
    with pytest.raises(GraphQLError) as refused:
        client.graphql("Atza|not-a-token", INSTALLATION, "query { buyWithPrimeStore { siteId } }")
    assert refused.value.types == ["AccessDeniedError"]
    assert not refused.value.transient


# --- Retry-After (RFC 9110 10.2.3): delta-seconds and HTTP-date, bounded by the deadline ---------------------------

NOW = 1_750_000_000.0  # the injected wall clock (epoch seconds) an HTTP-date is read against


def _client_with(
    sandbox: BuyWithPrimeSandbox, slept: list[float], *, attempts: int = 4, wall_clock: float = NOW
) -> BuyWithPrimeClient:
    return BuyWithPrimeClient(
        sandbox.token_url,
        sandbox.graphql_url,
        session=requests.Session(),
        sleep=slept.append,
        wall_clock=lambda: wall_clock,
        token_budget=HttpBudget(connect_timeout=1.0, read_timeout=1.0, attempts=attempts),
        graphql_budget=HttpBudget(connect_timeout=1.0, read_timeout=1.0, attempts=attempts),
    )


def _frozen_deadline(remaining: float) -> Deadline:
    """A deadline whose clock never moves: exactly `remaining` seconds are left, however long the test takes."""
    return Deadline(at=1000.0 + remaining, clock=lambda: 1000.0)


QUERY = "query { buyWithPrimeStore { siteId } }"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_is_waited(sandbox: BuyWithPrimeSandbox, slept: list[float], status: int) -> None:
    client = _client_with(sandbox, slept)
    sandbox.fail_next("graphql", status, headers={"Retry-After": "7"})
    data = client.graphql(_access_token(sandbox), INSTALLATION, QUERY, deadline=_frozen_deadline(60))
    assert "siteId" in data["buyWithPrimeStore"]
    assert slept == [7.0]  # longer than the backoff cap (1 s here): Buy with Prime's word counts
    assert sandbox.calls["graphql"] == 2


def test_retry_after_as_an_http_date_is_waited(sandbox: BuyWithPrimeSandbox, slept: list[float]) -> None:
    client = _client_with(sandbox, slept)
    sandbox.fail_next("graphql", 429, headers={"Retry-After": formatdate(NOW + 12, usegmt=True)})
    client.graphql(_access_token(sandbox), INSTALLATION, QUERY, deadline=_frozen_deadline(60))
    assert slept == [12.0]


def test_retry_after_on_a_throttling_error_in_a_200_is_waited(sandbox: BuyWithPrimeSandbox, slept: list[float]) -> None:
    client = _client_with(sandbox, slept)
    throttled = {"errors": [{"message": "slow down", "extensions": {"classification": {"type": "ThrottlingError"}}}]}
    sandbox.fail_next("graphql", 200, body=throttled, headers={"Retry-After": "3"})
    client.graphql(_access_token(sandbox), INSTALLATION, QUERY)
    assert slept == [3.0]


def test_a_retry_after_that_does_not_fit_the_deadline_ends_the_retries_at_once(
    sandbox: BuyWithPrimeSandbox, slept: list[float]
) -> None:
    client = _client_with(sandbox, slept)
    sandbox.fail_next("graphql", 429, times=4, headers={"Retry-After": "20"})
    # 20 s of wait plus one whole attempt (2 s) does not fit in 15 s: no sleep, no second request
    with pytest.raises(TransientBuyWithPrimeError):
        client.graphql(_access_token(sandbox), INSTALLATION, QUERY, deadline=_frozen_deadline(15))
    assert slept == []
    assert sandbox.calls["graphql"] == 1


def test_a_retry_after_that_just_fits_the_deadline_is_waited(sandbox: BuyWithPrimeSandbox, slept: list[float]) -> None:
    client = _client_with(sandbox, slept)
    sandbox.fail_next("graphql", 429, headers={"Retry-After": "20"})
    client.graphql(_access_token(sandbox), INSTALLATION, QUERY, deadline=_frozen_deadline(22))
    assert slept == [20.0]


def test_without_a_deadline_a_retry_after_is_capped(sandbox: BuyWithPrimeSandbox, slept: list[float]) -> None:
    client = _client_with(sandbox, slept)
    sandbox.fail_next("graphql", 429, headers={"Retry-After": "3600"})
    client.graphql(_access_token(sandbox), INSTALLATION, QUERY)
    assert slept == [MAX_RETRY_AFTER_SECONDS]


@pytest.mark.parametrize("value", ["-5", "1.5", "soon", "", "Sun, 99 Nov 2025 25:61:00 GMT", "³"])
def test_a_malformed_retry_after_is_ignored(sandbox: BuyWithPrimeSandbox, slept: list[float], value: str) -> None:
    client = _client_with(sandbox, slept)
    sandbox.fail_next("graphql", 429, headers={"Retry-After": value})
    client.graphql(_access_token(sandbox), INSTALLATION, QUERY)
    assert len(slept) == 1 and 0 <= slept[0] <= 0.2  # the own first backoff only


def test_the_token_endpoint_waits_a_retry_after_only_up_to_its_backoff_cap(
    sandbox: BuyWithPrimeSandbox, slept: list[float]
) -> None:
    # the refresh lease is computed from the token budget's worst case, which assumes the backoff cap
    client = _client_with(sandbox, slept)
    refresh_token = str(sandbox.issue_tokens(INSTALLATION)["refresh_token"])
    sandbox.fail_next("token", 429, headers={"Retry-After": "60"})
    sandbox.fail_next("token", 503, headers={"Retry-After": formatdate(NOW + 1, usegmt=True)})
    client.refresh(CREDENTIALS, refresh_token)
    assert slept == [2.0, 1.0]


def test_retry_after_values() -> None:
    assert retry_after_seconds(None, NOW) is None
    assert retry_after_seconds(" 0 ", NOW) == 0.0
    assert retry_after_seconds("120", NOW) == 120.0
    assert retry_after_seconds("9" * 5000, NOW) == 1e9  # huge, never an int() of 5,000 digits
    assert retry_after_seconds(formatdate(NOW + 90, usegmt=True), NOW) == 90.0
    assert retry_after_seconds(formatdate(NOW - 90, usegmt=True), NOW) == 0.0  # already past: no wait
    assert retry_after_seconds("Sunday, 06-Nov-94 08:49:37 GMT", NOW) == 0.0  # obsolete RFC 850 form, past
    assert retry_after_seconds("+30", NOW) is None
    assert retry_after_seconds("30s", NOW) is None


# --- GraphQLThrottled: one count per throttled attempt -------------------------------------------------------------


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    monkeypatch.setattr(buy_with_prime, "count", lambda name, value=1: names.append(name))
    return names


def test_each_throttled_attempt_is_counted_even_when_a_retry_succeeds(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, counted: list[str]
) -> None:
    sandbox.fail_next("graphql", 429)  # HTTP 429
    sandbox.throttle_next(times=2)  # then HTTP 200 with a ThrottlingError, twice
    data = client.graphql(_access_token(sandbox), INSTALLATION, QUERY)
    assert "siteId" in data["buyWithPrimeStore"]
    assert counted.count("GraphQLThrottled") == 3


def test_throttled_attempts_are_counted_when_the_retries_run_out(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, counted: list[str]
) -> None:
    sandbox.fail_next("graphql", 429, times=4)
    with pytest.raises(TransientBuyWithPrimeError):
        client.graphql(_access_token(sandbox), INSTALLATION, QUERY)
    assert counted.count("GraphQLThrottled") == 4


def test_5xx_and_token_throttling_are_not_graphql_throttling(
    sandbox: BuyWithPrimeSandbox, client: BuyWithPrimeClient, counted: list[str]
) -> None:
    sandbox.fail_next("graphql", 503)
    client.graphql(_access_token(sandbox), INSTALLATION, QUERY)
    sandbox.fail_next("token", 429)
    client.refresh(CREDENTIALS, str(sandbox.issue_tokens(INSTALLATION)["refresh_token"]))
    assert "GraphQLThrottled" not in counted
