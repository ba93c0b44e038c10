"""Shared fixtures: moto for AWS (table built from template.yaml), the local Buy with Prime
sandbox, and an `app` driver that plays both the merchant's browser and Buy with Prime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools.template import function_environment, table_create_arguments
from oauth.dependencies import Dependencies
from sandbox.server import BuyWithPrimeSandbox
from tests.app_driver import API_ORIGIN, AppDriver
from tests.events_driver import EventsDriver

CLIENT_ID = "amzn1.application-oa2-client.test"
CLIENT_SECRET = "test-client-secret-4f1c2b"  # distinctive, so the log scan can look for it
TABLE_NAME = "bwp-test-table"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach real AWS: fake credentials, a fixed region, Powertools set up."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # the Powertools settings the template gives every function
        **{
            k: v
            for k, v in function_environment("OAuthFunction").items()
            if k.startswith("POWERTOOLS_") and isinstance(v, str)
        },
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb")
    client.create_table(**table_create_arguments(name=TABLE_NAME))
    return client


@pytest.fixture
def secret_arn(aws: None) -> str:
    client = boto3.client("secretsmanager")
    answer = client.create_secret(
        Name="bwp-client-credentials", SecretString=json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    )
    return str(answer["ARN"])


@pytest.fixture
def sandbox() -> Iterator[BuyWithPrimeSandbox]:
    with BuyWithPrimeSandbox(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=f"{API_ORIGIN}/install"
    ) as running:
        yield running


@pytest.fixture
def environ(dynamodb: Any, secret_arn: str, sandbox: BuyWithPrimeSandbox) -> dict[str, str]:
    """The OAuth function's environment, as the template would set it, pointing at the sandbox."""
    return {
        "TABLE_NAME": TABLE_NAME,
        "CLIENT_CREDENTIALS_SECRET_ARN": secret_arn,
        "BWP_AUTHORIZE_URL": sandbox.authorize_url,
        "BWP_TOKEN_URL": sandbox.token_url,
        "BWP_GRAPHQL_URL": sandbox.graphql_url,
        "BWP_VERIFICATION_PUBLIC_KEY": sandbox.signer.public_key_pem,
        "OAUTH_STATE_TTL_SECONDS": "600",
    }


@pytest.fixture
def deps(environ: dict[str, str]) -> Dependencies:
    return Dependencies(environ)


@pytest.fixture
def app(deps: Dependencies, sandbox: BuyWithPrimeSandbox, dynamodb: Any) -> AppDriver:
    return AppDriver(deps, sandbox, dynamodb, TABLE_NAME)


@pytest.fixture
def events(environ: dict[str, str], sandbox: BuyWithPrimeSandbox) -> EventsDriver:
    return EventsDriver(environ, sandbox, TABLE_NAME)


# --- Session-wide secret scan (tests/security/log_scan.py): everything any test logs or prints is
# searched at the end of the session for every token, code, verifier and secret the tests minted;
# a hit fails the session. The hooks are imported here so that every run of the suite has them.
from tests.security.log_scan import (  # noqa: E402
    pytest_runtest_logreport,  # noqa: F401
    pytest_runtest_logstart,  # noqa: F401
    pytest_sessionfinish,  # noqa: F401
    pytest_sessionstart,  # noqa: F401
    pytest_terminal_summary,  # noqa: F401
    register,
)

register(CLIENT_SECRET, "client secret (tests/conftest.py)")
