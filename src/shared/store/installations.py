"""Installations and their tokens: one item per installation, every change a conditional write."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.models import Installation, InstallationStatus, TokenSet
from shared.store.keys import (
    INSTALLATION_PREFIX,
    SWEEP_HOUR,
    SWEEP_INDEX,
    SWEEP_SHARD,
    TTL_ATTRIBUTE,
    Item,
    get_n,
    get_s,
    installation_key,
    is_conditional_check_failure,
    n,
    rescued_tokens_key,
    s,
)

# A parked (rescued) pair is adopted by the next refresh, at most 15 minutes later; kept a week.
RESCUE_RETENTION_SECONDS = 7 * 24 * 3600

# The sweep index (keys.SWEEP_INDEX, KEYS_ONLY, sparse): an installation that is active or needs
# re-authorisation is indexed under "<STATUS>#<shard>" by the hour of its last token refresh.
# - 8 shards per status: index writes of a large fleet spread over 8 partition keys (each far below
#   a partition's 1,000 writes/s even at 1M installations refreshed every 12 minutes).
# - The hour, not the second: DynamoDB writes an index entry only when its keys change, so a busy
#   installation refreshed every ~12 minutes rewrites it at most 24 times a day, not 120. The sweep
#   checks the exact `tokens_refreshed_at` before it refreshes anything.
# - Uninstalled installations leave the index (the attribute is removed).
SWEEP_SHARDS = 8
SWEEP_RESOLUTION_SECONDS = 3600


class UninstallOutcome(StrEnum):
    UNINSTALLED = "uninstalled"
    ALREADY_UNINSTALLED = "already_uninstalled"
    NOT_FOUND = "not_found"
    NEWER_INSTALLATION_KEPT = "newer_installation_kept"


class InstallationStore:
    """`client` is a boto3 DynamoDB client; the store never builds its own."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, installation_id: str) -> Installation | None:
        answer = self._client.get_item(
            TableName=self._table, Key=installation_key(installation_id), ConsistentRead=True
        )
        item = answer.get("Item")
        return None if item is None else _installation(installation_id, item)

    def save_installation(self, installation_id: str, tokens: TokenSet, now: float) -> None:
        """Store a new (or re-)installation; replaces whatever was there, lease and tombstone included.
        `installed_at_ms` orders it strictly against an uninstall request (a same-second re-install)."""
        item: Item = {
            **installation_key(installation_id),
            "installation_id": s(installation_id),
            "status": s(InstallationStatus.ACTIVE.value),
            "installed_at": n(now),
            "installed_at_ms": n(now * 1000),
            "updated_at": n(now),
            "tokens_refreshed_at": n(now),
            **_sweep_keys(InstallationStatus.ACTIVE, installation_id, now),
            **_token_attributes(tokens, int(now)),
        }
        self._client.put_item(TableName=self._table, Item=item)

    def acquire_refresh_lease(
        self, installation_id: str, owner: str, refresh_token: str, now: int, lease_seconds: int
    ) -> Lease | None:
        """Take the per-installation refresh lease if it is free (or stale) and nobody refreshed since;
        None when it was not free.

        `Lease.after_unfinished`: an earlier lease was left on the item (it expired, or was released
        after a failure). Only then can a pair redeemed for this refresh token be parked in the rescue
        item: a holder parks a pair only while it holds its lease, and only storing a pair (or
        re-installing, uninstalling, needing re-authorisation) removes `lease_expires_at`; a release
        keeps it (`release_refresh_lease`). So an ordinary refresh needs no read of the rescue item.
        """
        old = self._update(
            installation_id,
            update="SET lease_owner = :owner, lease_expires_at = :until",
            condition=(
                "refresh_token = :rt AND #status = :active"
                " AND (attribute_not_exists(lease_expires_at) OR lease_expires_at < :now)"
            ),
            values={
                ":owner": s(owner),
                ":until": n(now + lease_seconds),
                ":rt": s(refresh_token),
                ":active": s(InstallationStatus.ACTIVE.value),
                ":now": n(now),
            },
        )
        return None if old is None else Lease(after_unfinished="lease_expires_at" in old)

    def store_refreshed_tokens(
        self, installation_id: str, owner: str, old_refresh_token: str, tokens: TokenSet, now: int
    ) -> bool:
        """Write the new pair atomically (fenced): only while `owner` still holds the refresh lease
        and the redeemed refresh token is still the stored one. The installation is then active."""
        attributes = _token_attributes(tokens, now)
        return self._conditional_update(
            installation_id,
            update=(
                "SET access_token = :at, refresh_token = :new_rt, access_token_expires_at = :exp,"
                " updated_at = :now, tokens_refreshed_at = :now, #status = :active,"
                " #shard = :shard, #hour = :hour"
                " REMOVE lease_owner, lease_expires_at, reauthorization_reason"
            ),
            condition="refresh_token = :old_rt AND lease_owner = :owner",
            names=_SWEEP_NAMES,
            values={
                **_sweep_values(InstallationStatus.ACTIVE, installation_id, now),
                ":at": attributes["access_token"],
                ":new_rt": attributes["refresh_token"],
                ":exp": attributes["access_token_expires_at"],
                ":now": n(now),
                ":old_rt": s(old_refresh_token),
                ":owner": s(owner),
                ":active": s(InstallationStatus.ACTIVE.value),
            },
        )

    def rescue_tokens(self, installation_id: str, old_refresh_token: str, tokens: TokenSet, now: int) -> bool:
        """Park a redeemed pair that could not be stored, on another partition, for the next refresher."""
        item: Item = {
            **rescued_tokens_key(installation_id),
            "redeemed": s(_digest(old_refresh_token)),
            "issued_at": n(now),
            TTL_ATTRIBUTE: n(now + RESCUE_RETENTION_SECONDS),
            **_token_attributes(tokens, now),
        }
        self._client.put_item(TableName=self._table, Item=item)
        return True

    def rescued_tokens(self, installation_id: str, old_refresh_token: str, now: int) -> TokenSet | None:
        """The parked pair issued for `old_refresh_token`, if any; `expires_in` counts from `now`."""
        answer = self._client.get_item(
            TableName=self._table, Key=rescued_tokens_key(installation_id), ConsistentRead=True
        )
        item = answer.get("Item")
        if item is None or get_s(item, "redeemed") != _digest(old_refresh_token):
            return None
        return TokenSet.model_validate(
            {
                "access_token": get_s(item, "access_token"),
                "refresh_token": get_s(item, "refresh_token"),
                "expires_in": max(1, get_n(item, "access_token_expires_at") - now),
            }
        )

    def forget_rescued_tokens(self, installation_id: str) -> None:
        self._client.delete_item(TableName=self._table, Key=rescued_tokens_key(installation_id))

    def release_refresh_lease(self, installation_id: str, owner: str) -> bool:
        """Free the lease after a refresh that stored nothing: it ends now, but `lease_expires_at` stays,
        so the next holder still looks for a parked pair (`acquire_refresh_lease`)."""
        return self._conditional_update(
            installation_id,
            update="SET lease_expires_at = :ended REMOVE lease_owner",
            condition="lease_owner = :owner",
            values={":owner": s(owner), ":ended": n(0)},
        )

    def mark_needs_reauthorization(
        self, installation_id: str, owner: str, old_refresh_token: str, reason: str, now: int
    ) -> bool:
        """Stop refreshing a rejected refresh token; only the lease holder of that token may say so."""
        return self._conditional_update(
            installation_id,
            update=(
                "SET #status = :reauth, reauthorization_reason = :reason, updated_at = :now, #shard = :shard"
                " REMOVE access_token, access_token_expires_at, lease_owner, lease_expires_at"
            ),
            condition="refresh_token = :old_rt AND lease_owner = :owner",
            names={"#shard": SWEEP_SHARD},
            values={
                ":shard": s(sweep_partition(InstallationStatus.NEEDS_REAUTHORIZATION, installation_id)),
                ":reauth": s(InstallationStatus.NEEDS_REAUTHORIZATION.value),
                ":reason": s(reason),
                ":now": n(now),
                ":old_rt": s(old_refresh_token),
                ":owner": s(owner),
            },
        )

    def uninstall(self, installation_id: str, requested_at_ms: int, now: int) -> UninstallOutcome:
        """Forget the tokens of an installation made strictly before the uninstall request.

        `requested_at_ms` is the latest the request can have been issued (oauth.flow.uninstall). A
        re-installation stored after that, even in the same second, is left untouched, so a late or
        repeated uninstall can never remove a newer installation's tokens. Items written before
        `installed_at_ms` existed are compared by `installed_at` (seconds, strictly earlier).
        """
        done = self._conditional_update(
            installation_id,
            update=(
                # the tombstone (no tokens) stays in the sweep index under UNINSTALLED#<n> with the
                # uninstall hour: the sweep purges the tenant TenantPurgeDays later (store/purge.py)
                "SET #status = :uninstalled, uninstalled_at = :now, updated_at = :now, #shard = :shard, #hour = :hour"
                " REMOVE access_token, refresh_token, access_token_expires_at, lease_owner, lease_expires_at,"
                " reauthorization_reason, #ttl"
            ),
            condition=(
                "#status <> :uninstalled AND (installed_at_ms < :requested_ms"
                " OR (attribute_not_exists(installed_at_ms) AND installed_at < :requested_s))"
            ),
            values={
                ":uninstalled": s(InstallationStatus.UNINSTALLED.value),
                ":now": n(now),
                **_sweep_values(InstallationStatus.UNINSTALLED, installation_id, now),
                ":requested_ms": n(requested_at_ms),
                ":requested_s": n(-(-requested_at_ms // 1000)),
            },
            names={"#ttl": TTL_ATTRIBUTE, **_SWEEP_NAMES},
        )
        if done:
            return UninstallOutcome.UNINSTALLED
        current = self.get(installation_id)
        if current is None:
            return UninstallOutcome.NOT_FOUND
        if current.status is InstallationStatus.UNINSTALLED:
            return UninstallOutcome.ALREADY_UNINSTALLED
        return UninstallOutcome.NEWER_INSTALLATION_KEPT

    def idle_installations(self, refreshed_before: int, first_shard: int = 0, page_size: int = 100) -> Iterator[str]:
        """IDs of active installations whose last refresh hour is before `refreshed_before`, oldest
        first within each shard, shards from `first_shard` on (a superset: the hour of a refresh
        at 10:59 is 10:00; the token service checks the exact time before refreshing)."""
        before = refreshed_before - refreshed_before % SWEEP_RESOLUTION_SECONDS + SWEEP_RESOLUTION_SECONDS
        for step in range(SWEEP_SHARDS):
            shard = (first_shard + step) % SWEEP_SHARDS
            for item in self._query_index(
                "#shard = :shard AND #hour < :before",
                {":shard": s(f"{InstallationStatus.ACTIVE.value.upper()}#{shard}"), ":before": n(before)},
                page_size=page_size,
            ):
                yield str(item["pk"]["S"]).removeprefix(INSTALLATION_PREFIX)

    def uninstalled_before(self, cutoff: int, page_size: int = 100) -> Iterator[str]:
        """IDs of installations uninstalled before `cutoff` (epoch seconds; to the hour, a subset),
        from the sweep index: the tenants due for a purge."""
        before = cutoff - cutoff % SWEEP_RESOLUTION_SECONDS
        for shard in range(SWEEP_SHARDS):
            values = {":shard": s(f"{InstallationStatus.UNINSTALLED.value.upper()}#{shard}"), ":before": n(before)}
            for item in self._query_index("#shard = :shard AND #hour < :before", values, page_size=page_size):
                yield str(item["pk"]["S"]).removeprefix(INSTALLATION_PREFIX)

    def ids_with_status(self, status: InstallationStatus, page_size: int = 100) -> Iterator[str]:
        """IDs of the installations with `status` (any: uninstalled ones wait there for their purge), from the index."""
        for shard in range(SWEEP_SHARDS):
            values = {":shard": s(f"{status.value.upper()}#{shard}")}
            for item in self._query_index("#shard = :shard", values, page_size=page_size):
                yield str(item["pk"]["S"]).removeprefix(INSTALLATION_PREFIX)

    def get_many(self, installation_ids: list[str]) -> list[Installation]:
        """The installations of up to 100 IDs in one BatchGetItem (unprocessed keys asked again)."""
        if len(installation_ids) > 100:
            raise ValueError("BatchGetItem reads at most 100 keys")
        keys = [installation_key(i) for i in installation_ids]
        found: list[Installation] = []
        for _ in range(10):  # DynamoDB hands back what it could not read; bounded, never a busy loop
            if not keys:
                break
            answer = self._client.batch_get_item(RequestItems={self._table: {"Keys": keys}})
            for item in answer.get("Responses", {}).get(self._table, []):
                found.append(_installation(str(item["pk"]["S"]).removeprefix(INSTALLATION_PREFIX), item))
            keys = answer.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
        if keys:
            raise RuntimeError(f"DynamoDB left {len(keys)} installations unread after 10 tries (throttled)")
        order = {installation_id: index for index, installation_id in enumerate(installation_ids)}
        return sorted(found, key=lambda installation: order[installation.installation_id])

    def count_with_status(self, status: InstallationStatus) -> int:
        """How many installations have `status` (any status), from the index:
        COUNT queries read only the index's keys (about 100 bytes an installation)."""
        total = 0
        for shard in range(SWEEP_SHARDS):
            values = {":shard": s(f"{status.value.upper()}#{shard}")}
            for answer in self._query_pages("#shard = :shard", values, Select="COUNT"):
                total += int(answer.get("Count", 0))
        return total

    def _query_index(self, condition: str, values: dict[str, Any], *, page_size: int) -> Iterator[Item]:
        for answer in self._query_pages(condition, values, Limit=page_size):
            yield from answer.get("Items", [])

    def _query_pages(self, condition: str, values: dict[str, Any], **extra: Any) -> Iterator[dict[str, Any]]:
        names = {k: v for k, v in _SWEEP_NAMES.items() if k in condition}
        start: Item | None = None
        while True:
            answer = self._client.query(
                TableName=self._table,
                IndexName=SWEEP_INDEX,
                KeyConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **extra,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            yield answer
            start = answer.get("LastEvaluatedKey")
            if not start:
                return

    def _conditional_update(
        self,
        installation_id: str,
        *,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> bool:
        """Whether the update was applied."""
        return self._update(installation_id, update=update, condition=condition, values=values, names=names) is not None

    def _update(
        self,
        installation_id: str,
        *,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> Item | None:
        """The updated attributes' earlier values when the update was applied (UPDATED_OLD costs no
        extra capacity), None when its condition failed."""
        attribute_names = {"#status": "status", **(names or {})}
        used = {k: v for k, v in attribute_names.items() if k in update or k in condition}
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=installation_key(installation_id),
                UpdateExpression=update,
                ConditionExpression=f"attribute_exists(pk) AND ({condition})",
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_OLD",
                **({"ExpressionAttributeNames": used} if used else {}),
            )
        except Exception as error:
            if is_conditional_check_failure(error):
                return None
            raise
        attributes: Item = answer.get("Attributes") or {}
        return attributes


@dataclass(frozen=True)
class Lease:
    """A refresh lease just taken (InstallationStore.acquire_refresh_lease)."""

    after_unfinished: bool  # an earlier lease was left: a pair redeemed under it may be parked


_SWEEP_NAMES = {"#shard": SWEEP_SHARD, "#hour": SWEEP_HOUR}


def sweep_partition(status: InstallationStatus, installation_id: str) -> str:
    shard = int(hashlib.sha256(installation_id.encode()).hexdigest()[:8], 16) % SWEEP_SHARDS
    return f"{status.value.upper()}#{shard}"


def _refreshed_hour(now: float) -> int:
    return int(now) - int(now) % SWEEP_RESOLUTION_SECONDS


def _sweep_keys(status: InstallationStatus, installation_id: str, now: float) -> Item:
    return {SWEEP_SHARD: s(sweep_partition(status, installation_id)), SWEEP_HOUR: n(_refreshed_hour(now))}


def _sweep_values(status: InstallationStatus, installation_id: str, now: float) -> Item:
    return {":shard": s(sweep_partition(status, installation_id)), ":hour": n(_refreshed_hour(now))}


def _token_attributes(tokens: TokenSet, now: int) -> Item:
    return {
        "access_token": s(tokens.access_token.get_secret_value()),
        "refresh_token": s(tokens.refresh_token.get_secret_value()),
        "access_token_expires_at": n(now + tokens.expires_in),
    }


def _installation(installation_id: str, item: Item) -> Installation:
    uninstalled_at = item.get("uninstalled_at")
    return Installation(
        installation_id=installation_id,
        status=InstallationStatus(get_s(item, "status") or InstallationStatus.ACTIVE.value),
        installed_at=get_n(item, "installed_at"),
        updated_at=get_n(item, "updated_at"),
        access_token=get_s(item, "access_token"),
        refresh_token=get_s(item, "refresh_token"),
        access_token_expires_at=get_n(item, "access_token_expires_at"),
        lease_owner=get_s(item, "lease_owner"),
        lease_expires_at=get_n(item, "lease_expires_at"),
        uninstalled_at=None if uninstalled_at is None else int(uninstalled_at["N"]),
        reauthorization_reason=get_s(item, "reauthorization_reason"),
        installed_at_ms=get_n(item, "installed_at_ms"),
        tokens_refreshed_at=get_n(item, "tokens_refreshed_at") or get_n(item, "installed_at"),
    )


def _digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()
