"""Run a sample event through a function's handler in-process, against moto, with the
environment template.yaml gives the function: the Docker-free stand-in for `sam local invoke`."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from devtools.apigw import LambdaContext
from devtools.template import function_environment, parameters, table_create_arguments

EVENTS = Path(__file__).resolve().parent.parent / "events"
SAMPLE_INSTALLATION = "amzn1.bwp.installation.sample-0001"
SAMPLE_INSTALLED_AT = 1_767_225_600 - 86_400  # a day before the samples were signed


def resolve(value: Any, local_names: dict[str, str]) -> str:
    """Resolve `Ref` to a parameter's default or a resource's local name; plain values as is."""
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        declared = parameters()
        if name in declared:
            return str(declared[name].get("Default", ""))
        return local_names[name]
    if isinstance(value, dict):
        raise ValueError(f"cannot resolve {value} locally")
    return str(value)


def function_env(function: str, local_names: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
    env = {name: resolve(value, local_names) for name, value in function_environment(function).items()}
    env.update(overrides)
    return env


def invoke(event_file: Path, function: str = "OAuthFunction") -> dict[str, Any]:
    """Create the table and secret in moto, seed the sample installation, invoke, return the answer."""
    import boto3
    from moto import mock_aws

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "local")
    event = json.loads(event_file.read_text(encoding="utf-8"))
    overrides: dict[str, str] = json.loads((EVENTS / "env.json").read_text(encoding="utf-8")).get(function, {})
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        table = table_create_arguments(name="local-installations")
        dynamodb.create_table(**table)
        secret = boto3.client("secretsmanager").create_secret(
            Name="local-client-credentials",
            SecretString=json.dumps(
                {"client_id": "amzn1.application-oa2-client.local", "client_secret": secrets.token_urlsafe(24)}
            ),
        )
        local_names = {"InstallationsTable": table["TableName"], "ClientCredentialsSecret": secret["ARN"]}
        env = function_env(function, local_names, overrides)
        _seed_sample_installation(dynamodb, table["TableName"])
        os.environ.update({k: v for k, v in env.items() if k.startswith("POWERTOOLS_")})
        from oauth import handler
        from oauth.dependencies import Dependencies

        handler.reset_dependencies(Dependencies(env))
        try:
            answer: dict[str, Any] = handler.lambda_handler(event, LambdaContext())
            return answer
        finally:
            handler.reset_dependencies()


def _seed_sample_installation(dynamodb: Any, table: str) -> None:
    """The installation the Settings and Uninstall samples are signed for (placeholder tokens)."""
    from shared.models import TokenSet
    from shared.store.installations import InstallationStore

    placeholder = {"access_token": "local-placeholder-access", "refresh_token": "local-placeholder-refresh"}
    tokens = TokenSet.model_validate(placeholder)
    store = InstallationStore(dynamodb, table)
    store.save_installation(SAMPLE_INSTALLATION, tokens, SAMPLE_INSTALLED_AT)
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": f"INSTALLATION#{SAMPLE_INSTALLATION}"}, "sk": {"S": "INSTALLATION"}},
        UpdateExpression="SET access_token_expires_at = :e",
        ExpressionAttributeValues={":e": {"N": str(int(time.time()) + 900)}},
    )
