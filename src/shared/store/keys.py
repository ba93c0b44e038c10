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
ORDER_SK_PREFIX = "ORDER#"
SNAPSHOT_PREFIX = "ORDERS#"
STORE_SK = "STORE"
ATTENTION_PREFIX = "ATTENTION#"

# The sparse index the idle sweep and the re-authorisation gauge query (template.yaml: TokenSweep).
# Only installations that are active or need re-authorisation carry its keys: the partition key is
# "<STATUS>#<shard>", the sort key the hour of the last token refresh (see installations.py).
SWEEP_INDEX = "TokenSweep"
SWEEP_SHARD = "sweep_shard"
SWEEP_HOUR = "refreshed_hour"

Item = dict[str, dict[str, Any]]


def installation_key(installation_id: str) -> Item:
    return {PK: {"S": INSTALLATION_PREFIX + installation_id}, SK: {"S": INSTALLATION_SK}}


def rescued_tokens_key(installation_id: str) -> Item:
    """Another partition than the installation's: a pair parked here survives that item's throttling."""
    return {PK: {"S": RESCUED_TOKENS_PREFIX + installation_id}, SK: {"S": RESCUED_TOKENS_SK}}


def uninstall_token_key(token_digest: str) -> Item:
    return {PK: {"S": UNINSTALL_TOKEN_PREFIX + token_digest}, SK: {"S": UNINSTALL_TOKEN_SK}}


# Hot keys: one merchant's flash sale writes its order snapshots over SNAPSHOT_SHARDS partitions
# (ORDERS#<installationId>#<0-15>, still one tenant's: a purge queries 16 partitions), apart from its
# token item; every tenant's attention items spread over ATTENTION_SHARDS partitions per outcome.
SNAPSHOT_SHARDS = 16
ATTENTION_SHARDS = 8


def shard_of(value: str, shards: int) -> int:
    return int(hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8], 16) % shards


def snapshot_key(installation_id: str, order_id: str) -> Item:
    pk = f"{SNAPSHOT_PREFIX}{installation_id}#{shard_of(order_id, SNAPSHOT_SHARDS)}"
    return key(pk, ORDER_SK_PREFIX + order_id)


def snapshot_partitions(installation_id: str) -> list[str]:
    return [f"{SNAPSHOT_PREFIX}{installation_id}#{n}" for n in range(SNAPSHOT_SHARDS)]


def attention_partition(outcome: str, event_id: str) -> str:
    return f"{ATTENTION_PREFIX}{outcome}#{shard_of(event_id, ATTENTION_SHARDS)}"


def attention_partitions(outcome: str) -> list[str]:
    return [f"{ATTENTION_PREFIX}{outcome}#{n}" for n in range(ATTENTION_SHARDS)]


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
