"""Installations as an operator sees them: status and token health, never a token; and, when
asked explicitly, a fresh access token or a GraphQL query run as an installation."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from typing import Any

from bwpctl.target import Target
from shared.models import Installation, InstallationStatus
from shared.store.installations import InstallationStore

LISTED_STATUSES = (InstallationStatus.ACTIVE, InstallationStatus.NEEDS_REAUTHORIZATION, InstallationStatus.UNINSTALLED)
OPERATOR_REASON = "operator"  # reauthorization_reason of an installation an operator marked
OPERATOR_LEASE_SECONDS = 30


def store_of(target: Target) -> InstallationStore:
    return InstallationStore(target.client("dynamodb"), target.table_name)


def counts(target: Target) -> dict[InstallationStatus, int]:
    """Installations per status, from the TokenSweep index (COUNT queries: no Scan, no item read)."""
    store = store_of(target)
    return {status: store.count_with_status(status) for status in LISTED_STATUSES}


def installations(target: Target, status: InstallationStatus, limit: int) -> Iterator[Installation]:
    """Up to `limit` installations with `status`: IDs from the index, items 100 per BatchGetItem."""
    store = store_of(target)
    ids = itertools.islice(store.ids_with_status(status), limit)
    while batch := list(itertools.islice(ids, 100)):
        yield from store.get_many(batch)


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


def force_reauthorization(target: Target, installation_id: str, now: int | None = None) -> str:
    """Mark an installation as needing re-authorisation (a merchant's revoked grant the API has not
    refused yet, a leaked token): the functions' own path, `mark_needs_reauthorization`, under a
    refresh lease taken here, so a refresh in flight cannot store a new pair over the mark (its
    fenced write fails) and the mark cannot land on a pair refreshed meanwhile."""
    now = int(time.time()) if now is None else now
    store = store_of(target)
    current = store.get(installation_id)
    if current is None:
        raise SystemExit(f"no installation {installation_id} in {target.table_name}")
    if current.status is InstallationStatus.UNINSTALLED:
        raise SystemExit(f"installation {installation_id} is uninstalled: there is nothing to re-authorise")
    if current.status is InstallationStatus.NEEDS_REAUTHORIZATION:
        reason = current.reauthorization_reason or "-"
        return f"{installation_id} already needs re-authorisation (reason: {reason}); nothing changed"
    if not current.refresh_token:
        raise SystemExit(f"installation {installation_id} has no refresh token to retire; look with `bwpctl show`")
    owner = f"bwpctl-reauth-{uuid.uuid4().hex}"
    lease = store.acquire_refresh_lease(installation_id, owner, current.refresh_token, now, OPERATOR_LEASE_SECONDS)
    if lease is None:
        raise SystemExit(
            f"installation {installation_id} is being refreshed or changed right now (its refresh lease is"
            f" taken): nothing changed; try again in {OPERATOR_LEASE_SECONDS} s"
        )
    if not store.mark_needs_reauthorization(installation_id, owner, current.refresh_token, OPERATOR_REASON, now):
        store.release_refresh_lease(installation_id, owner)
        raise SystemExit(f"installation {installation_id} changed meanwhile: nothing changed; look with `bwpctl show`")
    return (
        f"{installation_id}: {current.status.value} -> {InstallationStatus.NEEDS_REAUTHORIZATION.value}"
        f" (reason: {OPERATOR_REASON}); its access token is dropped and never refreshed again: its events are"
        " kept for attention (needs_reauthorization) until the merchant authorises the app again"
    )
