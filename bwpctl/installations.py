"""Installations as an operator sees them: status and token health, never a token; and, when
asked explicitly, a fresh access token or a GraphQL query run as an installation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from bwpctl.target import Target
from shared.models import Installation, InstallationStatus
from shared.store.installations import InstallationStore
from shared.store.keys import INSTALLATION_PREFIX, INSTALLATION_SK


def installations(target: Target) -> Iterator[Installation]:
    """Every installation item (a Scan: the operator's tool, never the functions' hot path)."""
    dynamodb = target.client("dynamodb")
    store = InstallationStore(dynamodb, target.table_name)
    arguments: dict[str, Any] = {
        "TableName": target.table_name,
        "FilterExpression": "sk = :sk AND begins_with(pk, :prefix)",
        "ExpressionAttributeValues": {":sk": {"S": INSTALLATION_SK}, ":prefix": {"S": INSTALLATION_PREFIX}},
        "ProjectionExpression": "pk",
    }
    while True:
        page = dynamodb.scan(**arguments)
        for item in page.get("Items", []):
            installation = store.get(item["pk"]["S"][len(INSTALLATION_PREFIX) :])
            if installation is not None:
                yield installation
        if "LastEvaluatedKey" not in page:
            return
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def health(installation: Installation, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if installation.status is InstallationStatus.UNINSTALLED:
        return "uninstalled"
    if installation.status is InstallationStatus.NEEDS_REAUTHORIZATION or not installation.refresh_token:
        return "needs re-authorisation"
    left = installation.access_token_expires_at - now
    if left > 0:
        return f"healthy (access token valid {int(left // 60)} min more)"
    return "healthy (access token expired; refreshed on next use)"


def describe(installation: Installation) -> str:
    installed = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(installation.installed_at))
    return f"{installation.installation_id}  {installation.status.value}  installed {installed}  {health(installation)}"


def token_service(target: Target) -> Any:
    """The functions' own token service (lease, rotation, re-authorisation), bound to the target."""
    import requests

    from shared.buy_with_prime import BuyWithPrimeClient
    from shared.credentials import ClientCredentialsProvider
    from shared.tokens import TokenCache, TokenService

    client = BuyWithPrimeClient(
        target.need("token_url"),
        target.need("graphql_url"),
        session=requests.Session(),
        api_version=target.api_version or None,
    )
    credentials = ClientCredentialsProvider(target.client("secretsmanager"), target.need("secret_arn"))
    store = InstallationStore(target.client("dynamodb"), target.table_name)
    return TokenService(store, client, credentials, TokenCache()), client


def run_graphql(target: Target, installation_id: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    service, client = token_service(target)
    data: dict[str, Any] = client.graphql(service.access_token(installation_id), installation_id, query, variables)
    return data
