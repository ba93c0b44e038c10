"""Client credentials come from Secrets Manager; a placeholder or malformed secret is a clear error."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from shared.credentials import ClientCredentialsProvider
from shared.errors import ConfigurationError
from tests.app_driver import API_ORIGIN, AppDriver
from tests.conftest import CLIENT_ID, CLIENT_SECRET


def _secret(value: str) -> str:
    return str(boto3.client("secretsmanager").create_secret(Name="creds", SecretString=value)["ARN"])


def test_reads_and_caches_the_secret(aws: None) -> None:
    arn = _secret(json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}))
    client = boto3.client("secretsmanager")
    now = [1000.0]
    provider = ClientCredentialsProvider(client, arn, ttl_seconds=300, clock=lambda: now[0])
    assert provider.get().client_id == CLIENT_ID
    client.put_secret_value(SecretId=arn, SecretString=json.dumps({"client_id": "rotated", "client_secret": "x"}))
    assert provider.get().client_id == CLIENT_ID  # cached
    now[0] += 301
    assert provider.get().client_id == "rotated"  # a rotated secret is picked up without a redeploy


@pytest.mark.parametrize(
    "value,message",
    [
        (json.dumps({"client_id": "REPLACE_ME", "client_secret": "generated"}), "placeholder"),
        ("not json", "malformed"),
        (json.dumps({"client_id": CLIENT_ID}), "malformed"),
    ],
)
def test_a_secret_that_is_not_set_up_is_a_configuration_error(aws: None, value: str, message: str) -> None:
    provider = ClientCredentialsProvider(boto3.client("secretsmanager"), _secret(value))
    with pytest.raises(ConfigurationError) as error:
        provider.get()
    assert message in str(error.value)
    assert "CLIENT_CREDENTIALS_SECRET_ARN" in str(error.value)
    assert "generated" not in str(error.value)


def test_launch_with_the_placeholder_secret_is_a_clear_500(app: AppDriver, secret_arn: str, dynamodb: Any) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=secret_arn, SecretString=json.dumps({"client_id": "REPLACE_ME", "client_secret": "generated"})
    )
    response = app.call("GET", f"{API_ORIGIN}/launch")
    assert response.status == 500
    assert "not configured" in response.body
    assert app.items() == []
