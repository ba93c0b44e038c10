"""Buy with Prime event types: canonical names, the deprecated aliases still accepted, and the names
of the legacy partner format Amazon's own samples use. Hydration does not key on these lists: an
event is hydrated whenever it carries what a hydrator wants (an order ID: events/pipeline.py)."""

from __future__ import annotations

ORDER_LINKED = frozenset(
    {
        "ORDER_CONFIRMED",
        "PACKAGE_DELIVERY_IN_TRANSIT",
        "PACKAGE_DELIVERED",
        "PACKAGE_DELIVERY_CANCELLED",
        "PACKAGE_TRACKER_MILESTONE_CHANGED",
        "REFUND_REQUESTED",
        "REFUND_COMPLETED",
        "RETURN_STARTED",
        "RETURN_ITEM_GRADED",
        "RETURN_COMPLETED",
        "RETURN_PACKAGE_IN_TRANSIT",
        "RETURN_PACKAGE_DELIVERED",
        "RETURN_PACKAGE_DELIVERY_FAILED",
    }
)

# The legacy partner format (amzn/buy-with-prime-saas-integration's samples): kept as received,
# their meaning is not documented to match a current name exactly.
LEGACY_NAMES = frozenset({"ORDER_PLACED", "ORDER_UPDATED", "REFUND_SUCCESS"})

OTHER_KNOWN = frozenset(
    {
        "BUYABILITY_CHANGED",
        "INVENTORY_CHANGED",
        "PERSONAL_DATA_DELETION_TASK_COMPLETED",
        "PERSONAL_DATA_DELETION_TASK_FAILED",
        "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED",
        "PERSONAL_DATA_RETRIEVAL_TASK_FAILED",
    }
)

# Deprecated on 2024-12-04 (and one old documentation name) -> the current name.
ALIASES = {
    "DELIVERY_IN_TRANSIT": "PACKAGE_DELIVERY_IN_TRANSIT",
    "ITEM_IN_TRANSIT": "PACKAGE_DELIVERY_IN_TRANSIT",
    "DELIVERY_COMPLETED": "PACKAGE_DELIVERED",
    "ITEM_DELIVERED": "PACKAGE_DELIVERED",
    "DELIVERY_CANCELLED": "PACKAGE_DELIVERY_CANCELLED",
    "ITEM_CANCELLED": "PACKAGE_DELIVERY_CANCELLED",
    "RETURN_DELIVERY_IN_TRANSIT": "RETURN_PACKAGE_IN_TRANSIT",
    "RETURN_DELIVERY_DELIVERED": "RETURN_PACKAGE_DELIVERED",
    "RETURN_DELIVERY_COMPLETED": "RETURN_PACKAGE_DELIVERED",
    "RETURN_DELIVERY_FAILED": "RETURN_PACKAGE_DELIVERY_FAILED",
    "PRODUCT_INVENTORY_CHANGED": "INVENTORY_CHANGED",
}


def canonical(event_type: str) -> str:
    """The current name of a type; unknown types pass through unchanged (new types will appear)."""
    name = event_type.strip().upper()
    return ALIASES.get(name, name)


def is_order_linked(event_type: str) -> bool:
    return event_type in ORDER_LINKED


def is_known(event_type: str) -> bool:
    return event_type in ORDER_LINKED or event_type in OTHER_KNOWN or event_type in LEGACY_NAMES
