"""Uninstall verification tokens seen: each is single-use. The first request that carries one is
remembered by the token's SHA-256 (never the token) with the time it was first seen; a repeat gets
that time back, so it re-applies the very same conditional uninstall and can never reach a newer
installation."""

from __future__ import annotations

from typing import Any

from shared.store.keys import (
    TENANT,
    TTL_ATTRIBUTE,
    Item,
    get_n,
    is_conditional_check_failure,
    n,
    s,
    tenant_value,
    uninstall_token_key,
)

# Kept for the token's lifetime plus this (or, without `exp`, this long after it was first seen).
RETENTION_SECONDS = 90 * 24 * 3600


class UninstallTokenStore:
    """`client` is a boto3 DynamoDB client; the store never builds its own."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def first_seen(
        self, token_digest: str, installation_id: str, now_ms: int, expires_at: int | None
    ) -> tuple[int, bool]:
        """(when this token was first seen, in ms; whether this is a repeat)."""
        item: Item = {
            **uninstall_token_key(token_digest),
            "installation_id": s(installation_id),
            "first_seen_ms": n(now_ms),
            TTL_ATTRIBUTE: n(max(expires_at or 0, now_ms // 1000) + RETENTION_SECONDS),
            # purged with the tenant (a repeat after that finds no installation: the uninstall's
            # own condition keeps any newer installation safe)
            TENANT: s(tenant_value(installation_id, uninstall_token_key(token_digest)["pk"]["S"])),
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as error:
            if not is_conditional_check_failure(error):
                raise
            seen = getattr(error, "response", {}).get("Item") or self._stored(token_digest)
            return get_n(seen, "first_seen_ms", now_ms), True
        return now_ms, False

    def _stored(self, token_digest: str) -> Item:
        key = uninstall_token_key(token_digest)
        answer = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        return dict(answer.get("Item") or {})
