"""Hydrators: what the pipeline fetches for an event, decided by what the event carries (never by
its type's name), and how the answer is kept.

A hydrator says: which resource of an event it wants (`wants`: an order ID, an item ID...), the
GraphQL document that fetches it (a `.graphql` file in events/queries), where the object sits in
the answer (`root`) and its version (the server's, when it has one). Snapshots are kept per
(installation, kind, resource, version): see shared.store.keys.snapshot_key. A new kind of data is
one new subclass added to HYDRATORS (and its kind to keys.SNAPSHOT_KINDS).

The store identity is a side hydrator: wanted once per installation, its failure never changes
how an event ends (a later batch fetches it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from events import queries
from events.envelope import PartnerEvent


@dataclass(frozen=True)
class Hydrator(ABC):
    name: str  # in logs and metrics
    kind: str  # the snapshot key's kind (keys.SNAPSHOT_KINDS)
    document: str  # events/queries/<document>.graphql
    root: str  # the field of the answer's `data` that holds the object

    @abstractmethod
    def wants(self, event: PartnerEvent) -> str | None:
        """The ID of the resource to fetch for `event`, or None when the event carries none."""

    @abstractmethod
    def variables(self, resource_id: str) -> dict[str, Any]:
        """The query's variables for that resource."""

    def query(self, api_version: str | None) -> str:
        return queries.load(self.document)

    def found(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The object in the answer; None: the API has no such resource."""
        value = data.get(self.root)
        return value if isinstance(value, dict) else None

    def version(self, found: dict[str, Any], requested_at_ms: int) -> int:
        """The server's version of the object; without one, when the request was sent: an answer to
        a later request never shows an older state than an earlier request's answer."""
        return requested_at_ms

    def carried(self, event: PartnerEvent) -> dict[str, Any] | None:
        """The object when the event itself carries it (no query needed), else None."""
        return None

    def is_open(self, found: dict[str, Any]) -> bool | None:
        """Whether the object may still change (orders only: the open-order markers); None: not tracked."""
        return None


@dataclass(frozen=True)
class OrderHydrator(Hydrator):
    name: str = "order"
    kind: str = "ORDER"
    document: str = "order"
    root: str = "order"

    def wants(self, event: PartnerEvent) -> str | None:
        return event.ids.order_id  # resources .../order/{id}, detail.orderIdentifier.orderId, data.order.id

    def variables(self, resource_id: str) -> dict[str, Any]:
        return {"orderId": resource_id}

    def query(self, api_version: str | None) -> str:
        return queries.order_query(api_version)

    def version(self, found: dict[str, Any], requested_at_ms: int) -> int:
        return epoch_ms(found.get("updatedAt")) or requested_at_ms

    def is_open(self, found: dict[str, Any]) -> bool:
        return not order_is_closed(found)


# When an order is closed: the one definition (RehydrateOpenOrdersHours re-hydrates the others).
# Conservative: an order is closed only when it has line items and EVERY one of them is in a state
# it is not expected to leave. The line-item state values are UNCONFIRMED (the sandbox answers
# "CONFIRMED"; no public list exists): anything else, an unknown or missing state, an order without
# line items, a return in progress, keeps the order open (re-hydrated again later: a wasted query at
# worst, never a missed change). A closed order that changes again (a return started after delivery)
# comes back through its event, whose snapshot marks it open again.
TERMINAL_LINE_ITEM_STATES = frozenset({"DELIVERED", "CANCELLED", "CANCELED", "RETURNED", "REFUNDED"})


def order_is_closed(order: dict[str, Any]) -> bool:
    items = order.get("lineItems")
    if not isinstance(items, list) or not items:
        return False
    return all(
        isinstance(item, dict) and str(item.get("state") or "").upper() in TERMINAL_LINE_ITEM_STATES for item in items
    )


@dataclass(frozen=True)
class InventoryHydrator(Hydrator):
    name: str = "inventory"
    kind: str = "INVENTORY_ITEM"
    document: str = "inventory_item"
    root: str = "inventoryItem"

    def wants(self, event: PartnerEvent) -> str | None:
        return event.ids.inventory_item_id  # businessProduct/{bp}/item-quantities/{id}

    def variables(self, resource_id: str) -> dict[str, Any]:
        return {"inventoryItemId": resource_id}


@dataclass(frozen=True)
class BuyabilityHydrator(Hydrator):
    name: str = "buyability"
    kind: str = "PRODUCT"
    document: str = "product_buyability"
    root: str = "product"

    def wants(self, event: PartnerEvent) -> str | None:
        return event.ids.item_id  # businessProduct/{bp}/items/{id}

    def variables(self, resource_id: str) -> dict[str, Any]:
        return {"id": resource_id}

    def carried(self, event: PartnerEvent) -> dict[str, Any] | None:
        """2024-11-01 BUYABILITY_CHANGED events carry `data.product` with its buyability."""
        product = event.data.get("product")
        if isinstance(product, dict) and isinstance(product.get("buyability"), dict):
            return product
        return None


@dataclass(frozen=True)
class StoreIdentityHydrator(Hydrator):
    """Wanted once per installation (the pipeline skips installations whose identity is stored)."""

    name: str = "store"
    kind: str = "STORE"
    document: str = "store"
    root: str = "buyWithPrimeStore"

    def wants(self, event: PartnerEvent) -> str | None:
        return "store"

    def variables(self, resource_id: str) -> dict[str, Any]:
        return {}


# In order of preference: an event is hydrated by the first that wants it.
HYDRATORS: tuple[Hydrator, ...] = (OrderHydrator(), InventoryHydrator(), BuyabilityHydrator())
STORE_IDENTITY = StoreIdentityHydrator()


def hydrator_of_kind(kind: str) -> Hydrator:
    return next(hydrator for hydrator in HYDRATORS if hydrator.kind == kind)


def hydrator_for(event: PartnerEvent | None) -> tuple[Hydrator, str] | None:
    """The hydrator an event is for, and the resource it wants; None: stored as received."""
    if event is None:
        return None
    for hydrator in HYDRATORS:
        if resource_id := hydrator.wants(event):
            return hydrator, resource_id
    return None


def epoch_ms(value: Any) -> int:
    """An ISO 8601 time in epoch milliseconds; 0 when absent or unreadable."""
    if not isinstance(value, str):
        return 0
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return 0
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)
