"""The Buy with Prime client: retries with backoff where safe, typed errors where not."""

from __future__ import annotations

import socket

import pytest
import requests

from sandbox.server import BuyWithPrimeSandbox
from shared.budget import HttpBudget
from shared.buy_with_prime import (
    BuyWithPrimeClient,
    GraphQLError,
    InvalidGrantError,
    TokenEndpointError,
    TransientBuyWithPrimeError,
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
