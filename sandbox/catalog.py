"""Stand-in data answered by the sandbox's GraphQL endpoint: stores and orders.

Everything is deterministic per installation / order ID so tests can assert on it.  The shapes are
plausible, not authoritative: only ``buyWithPrimeStore { siteId widgetId }`` and ``order { id
lineItems }`` are documented.  API versions before 2024-11-01 get ``deliveryInformation`` where later
ones get ``packageInformation`` (placement on the order is UNCONFIRMED).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

__all__ = [
    "ORDER_ALIAS_NAMESPACE",
    "make_inventory_item",
    "make_order",
    "make_product",
    "make_store",
    "order_id_for_alias",
]

_NAMESPACE = uuid.UUID("6f1c2a55-3b1e-4f59-9d0a-52a1b5c0e001")
ORDER_ALIAS_NAMESPACE = uuid.UUID("6f1c2a55-3b1e-4f59-9d0a-52a1b5c0e002")
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def make_store(installation_id: str) -> dict[str, Any]:
    """``buyWithPrimeStore`` for an installation: stable IDs derived from the installation ID."""
    return {
        "__typename": "BuyWithPrimeStore",
        "siteId": str(uuid.uuid5(_NAMESPACE, "site:" + installation_id)),
        "widgetId": str(uuid.uuid5(_NAMESPACE, "widget:" + installation_id)),
    }


def order_id_for_alias(alias_type: str, alias_id: str) -> str:
    """A stable Buy with Prime style order ID (``322-XXXX-XXXXXX``) for an order alias."""
    raw = _digest("alias", alias_type, alias_id)
    chars = "".join(_ALPHABET[b % len(_ALPHABET)] for b in raw[:10])
    return f"322-{chars[:4]}-{chars[4:10]}"


def _money(amount: str) -> dict[str, Any]:
    return {"__typename": "Amount", "amount": amount, "currencyCode": "USD"}


def make_order(order_id: str, api_version: str | None = None, alias: tuple[str, str] | None = None) -> dict[str, Any]:
    """A plausible order with one or two line items, stable for ``order_id``.

    ``alias`` (aliasType, aliasId) is listed among the order's aliases when given.
    """
    seed = _digest("order", order_id)
    count = 1 + seed[0] % 2
    total_cents = 0
    line_items = []
    for index in range(count):
        sku = f"SKU-{seed[1 + index]:03d}{index}"
        cents = 500 + seed[3 + index] * 7
        total_cents += cents * (1 + index)
        line_items.append(
            {
                "__typename": "LineItem",
                "id": str(uuid.uuid5(_NAMESPACE, f"line:{order_id}:{index}")),
                "quantity": {"__typename": "Quantity", "amount": 1 + index, "unit": "ONE"},
                "productDetails": {
                    "__typename": "ProductDetails",
                    "sku": sku,
                    "title": f"Sandbox item {sku}",
                    "price": _money(f"{cents // 100}.{cents % 100:02d}"),
                },
                "state": "CONFIRMED",
            }
        )
    packages = [
        {
            "__typename": "Package",
            "id": str(uuid.uuid5(_NAMESPACE, f"package:{order_id}")),
            "trackingNumber": "TBA" + seed[8:14].hex().upper(),
            "carrierCode": "AMZN_US",
            "status": "IN_TRANSIT",
        }
    ]
    alias_type, alias_id = alias or ("EXTERNAL_ID", "ext-" + order_id)
    delivery_key = (
        "deliveryInformation" if api_version is not None and api_version < "2024-11-01" else "packageInformation"
    )
    return {
        "__typename": "Order",
        "id": order_id,
        "createdAt": "2025-01-20T12:34:56Z",
        "updatedAt": "2025-01-20T12:40:00Z",
        "aliases": [{"__typename": "OrderAlias", "aliasType": alias_type, "aliasId": alias_id}],
        "lineItems": line_items,
        delivery_key: packages,
        "totalPrice": _money(f"{total_cents // 100}.{total_cents % 100:02d}"),
    }


def make_inventory_item(inventory_item_id: str) -> dict[str, Any]:
    """``inventoryItem { inventoryItemId buyableQuantity { unit amount } }`` (documented shape)."""
    seed = _digest("inventory", inventory_item_id)
    return {
        "__typename": "InventoryItem",
        "inventoryItemId": inventory_item_id,
        "buyableQuantity": {"__typename": "Quantity", "unit": "UNIT", "amount": seed[0] % 50},
    }


def make_product(product_id: str) -> dict[str, Any]:
    """``product`` with its ``buyability`` (documented fields; looked up by ``id``, an assumption)."""
    seed = _digest("product", product_id)
    return {
        "__typename": "Product",
        "id": product_id,
        "sku": {"__typename": "SkuProductIdentifier", "value": f"SKU-{seed[1]:03d}"},
        "externalId": {"__typename": "ExternalProductIdentifier", "value": f"ext-{product_id}"},
        "amazonSku": {"__typename": "AmazonSkuProductIdentifier", "value": f"MSKU-{seed[2]:03d}"},
        "buyability": {"__typename": "Buyability", "status": "BUYABLE" if seed[3] % 4 else "NOT_BUYABLE"},
    }
