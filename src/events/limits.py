"""DynamoDB's limits, checked in UTF-8 bytes before any request: a field that would make a write
fail (on every delivery, into the dead-letter queue) is found here instead, and the event is
recorded as failed (`schema_violation`) with a bounded copy of its body, never retried.

Limits: partition key 2,048 bytes, sort key 1,024 bytes, item 400 KB. The keys this pipeline builds
from an event's fields are checked with their prefixes; the raw body kept for an operator is cut to
RAW_BYTES and the resource paths may take RESOURCES_BYTES, so an event record stays far below
400 KB whatever arrives (SQS bodies may be up to 1 MiB).
"""

from __future__ import annotations

from events.envelope import PartnerEvent
from shared.store.keys import (
    EVENT_KEY_PREFIX,
    EVENT_PREFIX,
    INSTALLATION_PREFIX,
    LINK_PREFIX,
    snapshot_key,
)

PARTITION_KEY_BYTES = 2048
SORT_KEY_BYTES = 1024
RAW_BYTES = 200_000
RESOURCES_BYTES = 100_000
TEXT_BYTES = 1024  # event type names and times: stored as attributes, shown to operators


def utf8_bytes(text: str) -> int | None:
    """The UTF-8 length, or None when the text cannot be encoded (a lone surrogate from JSON)."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def problem(event: PartnerEvent) -> str | None:
    """The first field that cannot be written as it is ("<field>: <why>"), or None."""
    checks: list[tuple[str, str | None, int]] = [
        ("event_id", EVENT_PREFIX + event.event_id, PARTITION_KEY_BYTES),
        ("idempotency_key", _prefixed(EVENT_KEY_PREFIX, event.scoped_idempotency_key), PARTITION_KEY_BYTES),
        ("business_product_id", _prefixed(LINK_PREFIX, event.ids.business_product_id), PARTITION_KEY_BYTES),
        ("installation_id", _prefixed(INSTALLATION_PREFIX, event.installation_id), PARTITION_KEY_BYTES),
        ("order_id", _snapshot_sk("ORDER", event.ids.order_id), SORT_KEY_BYTES),
        ("item_id", _snapshot_sk("PRODUCT", event.ids.item_id), SORT_KEY_BYTES),
        ("inventory_item_id", _snapshot_sk("INVENTORY_ITEM", event.ids.inventory_item_id), SORT_KEY_BYTES),
        ("event_time", f"{event.time or ''}#{event.event_id}", SORT_KEY_BYTES),  # the attention sort key
        ("event_type", event.received_type, TEXT_BYTES),
    ]
    for name, value, limit in checks:
        if value is None:
            continue
        size = utf8_bytes(value)
        if size is None:
            return f"{name}: not valid Unicode"
        if size > limit:
            return f"{name}: {size} bytes with its key prefix, over {limit}"
    total = 0
    for path in event.resource_paths:
        size = utf8_bytes(path)
        if size is None:
            return "resources: not valid Unicode"
        total += size
    if total > RESOURCES_BYTES:
        return f"resources: {total} bytes, over {RESOURCES_BYTES}"
    return None


def bounded(text: str, limit: int = RAW_BYTES) -> str:
    """At most `limit` UTF-8 bytes of `text`, cut on a character boundary; never unencodable."""
    data = text.encode("utf-8", "replace")
    return data[:limit].decode("utf-8", "ignore")


def _prefixed(prefix: str, value: str | None) -> str | None:
    return None if value is None else prefix + value


def _snapshot_sk(kind: str, resource_id: str | None) -> str | None:
    """The sort key of the resource's snapshot versions (events/hydrators.py keys them so)."""
    return None if resource_id is None else str(snapshot_key(kind, "", resource_id, 0)["sk"]["S"])
