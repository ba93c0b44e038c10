"""Pending OAuth states: written at /launch, consumed exactly once at /install."""

from __future__ import annotations

from typing import Any

from shared.models import PendingAuthorization
from shared.store.keys import TTL_ATTRIBUTE, Item, get_n, get_s, is_conditional_check_failure, n, oauth_state_key, s


class OAuthStateStore:
    """`client` is a boto3 DynamoDB client; the store never builds its own."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put(self, pending: PendingAuthorization) -> None:
        item: Item = {
            **oauth_state_key(pending.state),
            "code_verifier": s(pending.code_verifier),
            "browser_binding": s(pending.browser_binding),
            "created_at": n(pending.created_at),
            TTL_ATTRIBUTE: n(pending.expires_at),
        }
        self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")

    def get(self, state: str) -> PendingAuthorization | None:
        """Read without consuming (used to explain a refusal; no side effect)."""
        answer = self._client.get_item(TableName=self._table, Key=oauth_state_key(state), ConsistentRead=True)
        item = answer.get("Item")
        return None if item is None else _pending(state, item)

    def consume(self, state: str, browser_binding: str, now: float) -> PendingAuthorization | None:
        """Delete the state if it exists, is unexpired and is bound to this browser; exactly once."""
        try:
            answer = self._client.delete_item(
                TableName=self._table,
                Key=oauth_state_key(state),
                ConditionExpression="attribute_exists(pk) AND browser_binding = :b AND #ttl > :now",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":b": s(browser_binding), ":now": n(now)},
                ReturnValues="ALL_OLD",
            )
        except Exception as error:
            if is_conditional_check_failure(error):
                return None
            raise
        return _pending(state, answer["Attributes"])


def _pending(state: str, item: Item) -> PendingAuthorization:
    return PendingAuthorization(
        state=state,
        code_verifier=get_s(item, "code_verifier") or "",
        browser_binding=get_s(item, "browser_binding") or "",
        created_at=get_n(item, "created_at"),
        expires_at=get_n(item, TTL_ATTRIBUTE),
    )
