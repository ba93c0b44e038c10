"""Typed identifiers parsed from an event's `resources` paths (singular segments, e.g.
`businessProduct/{bp}/order/{orderId}/refund/{refundId}`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# path segment -> field of ResourceIds; plural and kebab forms are documented for item events
_SEGMENTS = {
    "businessProduct": "business_product_id",
    "order": "order_id",
    "refund": "refund_id",
    "return": "return_id",
    "delivery": "delivery_id",
    "items": "item_id",
    "item": "item_id",
    "item-quantities": "inventory_item_id",  # INVENTORY_CHANGED: an inventoryItem ID
    "carrier": "carrier_code",
    "tracker": "tracking_number",
    "personalDataDeletionTask": "privacy_task_id",
    "personalDataRetrievalTask": "privacy_task_id",
}


class ResourceIds(BaseModel):
    """Everything one event's resources identify; unknown segments are ignored, not errors."""

    model_config = ConfigDict(frozen=True)

    business_product_id: str | None = None
    order_id: str | None = None
    refund_id: str | None = None
    return_id: str | None = None
    delivery_id: str | None = None
    item_id: str | None = None  # a product (BUYABILITY_CHANGED: items/{id})
    inventory_item_id: str | None = None
    carrier_code: str | None = None
    tracking_number: str | None = None
    privacy_task_id: str | None = None


def parse_resources(paths: list[str]) -> ResourceIds:
    """Merge the identifiers of every path (the first value of each kind wins)."""
    found: dict[str, str] = {}
    for path in paths:
        segments = [segment for segment in path.strip("/").split("/") if segment]
        index = 0
        while index < len(segments) - 1:
            field = _SEGMENTS.get(segments[index])
            if field is None:  # tolerate a prefix such as an ARN part: look for the next known name
                index += 1
                continue
            found.setdefault(field, segments[index + 1])
            index += 2
    return ResourceIds(**found)
