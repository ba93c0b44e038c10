"""Key layout of the one table and the tiny attribute codec the repositories share."""

from __future__ import annotations

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
