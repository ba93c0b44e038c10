"""Key layout of the one table and the tiny attribute codec the repositories share."""

from __future__ import annotations

import hashlib
from typing import Any

PK = "pk"
SK = "sk"
TTL_ATTRIBUTE = "expires_at"

INSTALLATION_PREFIX = "INSTALLATION#"
INSTALLATION_SK = "INSTALLATION"
RESCUED_TOKENS_PREFIX = "RESCUED_TOKENS#"
RESCUED_TOKENS_SK = "RESCUED_TOKENS"
UNINSTALL_TOKEN_PREFIX = "UNINSTALL_TOKEN#"  # noqa: S105 - a key prefix
UNINSTALL_TOKEN_SK = "UNINSTALL_TOKEN"  # noqa: S105 - a key name
OAUTH_STATE_PREFIX = "OAUTH_STATE#"
OAUTH_STATE_SK = "OAUTH_STATE"
EVENT_PREFIX = "EVENT#"
EVENT_SK = "EVENT"
EVENT_KEY_PREFIX = "EVENT_KEY#"
EVENT_KEY_SK = "EVENT_KEY"
LINK_PREFIX = "BUSINESS_PRODUCT#"
LINK_SK = "INSTALLATION_LINK"
STORE_SK = "STORE"
ATTENTION_PREFIX = "ATTENTION#"

# The sparse index the idle sweep and the re-authorisation gauge query (template.yaml: TokenSweep).
# Only installations that are active or need re-authorisation carry its keys: the partition key is
# "<STATUS>#<shard>", the sort key the hour of the last token refresh (see installations.py).
SWEEP_INDEX = "TokenSweep"
SWEEP_SHARD = "sweep_shard"
SWEEP_HOUR = "refreshed_hour"

# The sparse index a tenant's purge queries (template.yaml: TenantItems): every item of one
# installation that is not in a partition of its own (event records, idempotency keys, attention
# items, business-product links, open-order markers) carries "tenant" = "<installationId>#<0-7>", so a purge reads
# 8 index partitions, never a Scan, and never sees another tenant's items. Snapshots (their own
# partitions, snapshot_partitions), the store identity and the installation item are deleted by key.
TENANT_INDEX = "TenantItems"
TENANT = "tenant"
TENANT_SHARDS = 8

Item = dict[str, dict[str, Any]]


def installation_key(installation_id: str) -> Item:
    return {PK: {"S": INSTALLATION_PREFIX + installation_id}, SK: {"S": INSTALLATION_SK}}


def rescued_tokens_key(installation_id: str) -> Item:
    """Another partition than the installation's: a pair parked here survives that item's throttling."""
    return {PK: {"S": RESCUED_TOKENS_PREFIX + installation_id}, SK: {"S": RESCUED_TOKENS_SK}}


def uninstall_token_key(token_digest: str) -> Item:
    return {PK: {"S": UNINSTALL_TOKEN_PREFIX + token_digest}, SK: {"S": UNINSTALL_TOKEN_SK}}


# Hot keys: one merchant's flash sale writes its snapshots over SNAPSHOT_SHARDS partitions per kind
# (ORDERS#<installationId>#<0-15>, still one tenant's: a purge queries 16 partitions per kind), apart
# from its token item; every tenant's attention items spread over ATTENTION_SHARDS partitions per outcome.
SNAPSHOT_SHARDS = 16
ATTENTION_SHARDS = 8
SNAPSHOT_KINDS = ("ORDER", "INVENTORY_ITEM", "PRODUCT")  # events/hydrators.py: one per hydrator
VERSION_DIGITS = 15  # epoch milliseconds until the year 33658


def shard_of(value: str, shards: int) -> int:
    return int(hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8], 16) % shards


def snapshot_prefix(kind: str, resource_id: str) -> str:
    """The sort-key prefix of every version of one resource: `ORDER#<id>#v` (`#` and `%` in the ID
    percent-encoded, so no ID's versions can match another ID's prefix)."""
    return f"{kind}#{resource_id.replace('%', '%25').replace('#', '%23')}#v"


def snapshot_partition(kind: str, installation_id: str, resource_id: str) -> str:
    return f"{kind}S#{installation_id}#{shard_of(resource_id, SNAPSHOT_SHARDS)}"


def snapshot_key(kind: str, installation_id: str, resource_id: str, version: int) -> Item:
    """One immutable item per (resource, server version): the newest version is the greatest sort
    key, so an older answer written last never hides a newer one, and rewriting a version is
    idempotent (no condition needed: it can go in a BatchWriteItem)."""
    sk = f"{snapshot_prefix(kind, resource_id)}{max(0, version):0{VERSION_DIGITS}d}"
    return key(snapshot_partition(kind, installation_id, resource_id), sk)


def snapshot_partitions(installation_id: str) -> list[str]:
    return [f"{kind}S#{installation_id}#{n}" for kind in SNAPSHOT_KINDS for n in range(SNAPSHOT_SHARDS)]


# Open-order markers (RehydrateOpenOrdersHours, sweep/rehydrate.py): one small item per open order of
# every tenant, kept next to its ORDER snapshot's write, over OPEN_ORDER_SHARDS partitions of their
# own, so the sweep finds orders to re-hydrate with one Query per partition, never a Scan. They carry
# `tenant` (spread by their sort key): the tenant purge removes them with the tenant's other items.
OPEN_ORDERS_PREFIX = "OPEN_ORDERS#"
OPEN_ORDER_SHARDS = 8


def open_order_key(installation_id: str, order_id: str) -> Item:
    sk = f"{installation_id}#{order_id}"
    return key(f"{OPEN_ORDERS_PREFIX}{shard_of(sk, OPEN_ORDER_SHARDS)}", sk)


def open_order_partitions(first: int = 0) -> list[str]:
    """Every marker partition, starting with `first` (each sweep run starts with another)."""
    return [f"{OPEN_ORDERS_PREFIX}{(first + n) % OPEN_ORDER_SHARDS}" for n in range(OPEN_ORDER_SHARDS)]


def store_identity_key(installation_id: str) -> Item:
    return key(INSTALLATION_PREFIX + installation_id, STORE_SK)


def attention_partition(outcome: str, event_id: str) -> str:
    return f"{ATTENTION_PREFIX}{outcome}#{shard_of(event_id, ATTENTION_SHARDS)}"


def attention_partitions(outcome: str) -> list[str]:
    return [f"{ATTENTION_PREFIX}{outcome}#{n}" for n in range(ATTENTION_SHARDS)]


def tenant_value(installation_id: str, item_pk: str) -> str:
    """The TenantItems partition of one item (spread by its own key: a flash sale is not one hot key)."""
    return f"{installation_id}#{shard_of(item_pk, TENANT_SHARDS)}"


def tenant_partitions(installation_id: str) -> list[str]:
    return [f"{installation_id}#{n}" for n in range(TENANT_SHARDS)]


def oauth_state_key(state: str) -> Item:
    return {PK: {"S": OAUTH_STATE_PREFIX + state}, SK: {"S": OAUTH_STATE_SK}}


def key(pk: str, sk: str) -> Item:
    return {PK: {"S": pk}, SK: {"S": sk}}


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int | float) -> dict[str, str]:
    return {"N": str(int(value))}


def get_s(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


def get_n(item: Item, name: str, default: int = 0) -> int:
    value = item.get(name)
    return default if value is None else int(value["N"])


def is_conditional_check_failure(error: Exception) -> bool:
    response = getattr(error, "response", None) or {}
    return bool(response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")
