"""The token endpoint failing during install, each way it can: the merchant gets a clear page
(status, words, a way forward), nothing is stored, and trying again works once the cause is gone.

tests/test_oauth_refusals.py::test_the_token_endpoint_failing_gives_a_retry_page_and_a_retry_works
covers HTTP 503; here: a read timeout (never retried: Buy with Prime may already have redeemed the
code), HTTP 429 (retried with backoff, then the retry page; or absorbed), and invalid_client (the
app's own client secret is wrong).
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import requests

from sandbox.server import BuyWithPrimeSandbox
from shared.budget import HttpBudget
from shared.buy_with_prime import BuyWithPrimeClient
from tests.app_driver import AppDriver, Response
from tests.conftest import CLIENT_ID, CLIENT_SECRET

INSTALLATION = "amzn1.bwp.installation.token-failures"
RETRY_PAGE = "Buy with Prime could not be reached. Please try again."
REFUSED_PAGE = "Buy with Prime did not accept this sign-in. Start again."


def _install_attempt(app: AppDriver) -> Response:
    launched = app.launch()
    return app.call("GET", app.approve(launched, INSTALLATION), cookies=[launched.cookie])


def _wait_for(sandbox: BuyWithPrimeSandbox, counter: str, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while sandbox.calls[counter] < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sandbox.calls[counter] == count


def _no_installation(app: AppDriver) -> None:
    assert app.installation_item(INSTALLATION) is None
    assert not [i for i in app.items() if i["pk"]["S"].startswith("INSTALLATION#")]


def test_a_token_endpoint_slower_than_the_read_timeout_gives_a_retry_page_and_is_not_retried(
    app: AppDriver,
) -> None:
    """Production's read timeout is 10 s; the client is given 0.5 s here (same code path)."""
    settings = app.deps.settings
    app.deps.buy_with_prime = BuyWithPrimeClient(
        settings.bwp_token_url,
        settings.bwp_graphql_url,
        session=requests.Session(),
        token_budget=HttpBudget(read_timeout=0.5),
    )
    app.sandbox.latency("token", 1.5)
    started = time.monotonic()
    response = _install_attempt(app)
    elapsed = time.monotonic() - started
    assert response.status == 502
    assert RETRY_PAGE in response.body and 'href="/launch"' in response.body and "Start again" in response.body
    assert "Traceback" not in response.body and "timeout" not in response.body.lower()
    assert elapsed < 1.4, "the exchange was retried after a read timeout"
    _wait_for(app.sandbox, "token:authorization_code", 1)  # Buy with Prime did get it, once
    _no_installation(app)
    app.sandbox.latency("token", 0)
    assert app.install(INSTALLATION).status == 200  # a new launch, a new code: installed
    assert app.sandbox.calls["token:authorization_code"] == 2


def test_a_token_endpoint_answering_429_gives_a_retry_page_after_four_tries(app: AppDriver) -> None:
    app.sandbox.fail_next("token", 429, times=10)
    response = _install_attempt(app)
    assert response.status == 502
    assert RETRY_PAGE in response.body and 'href="/launch"' in response.body
    assert app.sandbox.calls["token"] == 4  # the first try and three retries with backoff
    _no_installation(app)
    app.sandbox.faults.clear()
    assert app.install(INSTALLATION).status == 200


def test_a_429_the_retries_absorb_is_invisible_to_the_merchant(app: AppDriver) -> None:
    app.sandbox.fail_next("token", 429, times=2)
    response = _install_attempt(app)
    assert response.status == 200 and "App installed" in response.body
    assert app.sandbox.calls["token"] == 3
    assert app.installation_item(INSTALLATION) is not None


def _misconfigure(secret_arn: str, client_secret: str) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=secret_arn, SecretString=json.dumps({"client_id": CLIENT_ID, "client_secret": client_secret})
    )


def test_invalid_client_gives_a_clear_page_stores_nothing_and_works_once_the_secret_is_fixed(
    app: AppDriver, secret_arn: str, environ: dict[str, str], dynamodb: Any
) -> None:
    _misconfigure(secret_arn, "not-the-client-secret")
    response = _install_attempt(app)
    assert response.status == 500
    assert "invalid_client" not in response.body and "not-the-client-secret" not in response.body
    assert app.sandbox.calls["token"] == 1  # a refusal is not retried
    _no_installation(app)
    _misconfigure(secret_arn, CLIENT_SECRET)  # the operator fixes the secret
    assert _install_attempt(app).status == 200  # the refused credentials were dropped from the cache


def test_invalid_client_is_reported_as_the_apps_configuration(app: AppDriver, secret_arn: str) -> None:
    _misconfigure(secret_arn, "not-the-client-secret")
    response = _install_attempt(app)
    assert response.status == 500
    assert "The app is not configured correctly yet" in response.body
    assert 'href="/launch"' not in response.body
