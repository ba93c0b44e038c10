"""Hydration by what an event carries (events/hydrators.py): an inventory item, a product's
buyability, as the order is; an event carrying the object itself needs no query."""

from __future__ import annotations

from typing import Any

from sandbox.catalog import make_inventory_item, make_product
from sandbox.events import partner_event, resource_path
from tests.events_driver import EventsDriver

INSTALLATION, BP = "amzn1.bwp.installation.hydrators", "amzn1.bp.hydrators"


def _latest(events: EventsDriver, kind: str, resource_id: str) -> dict[str, Any] | None:
    snapshot = events.store.latest_snapshot(kind, INSTALLATION, resource_id)
    return None if snapshot is None else snapshot.data


def _without_typename(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_typename(v) for k, v in value.items() if k != "__typename"}
    return value


def test_inventory_and_buyability_events_are_hydrated_by_their_item_ids(events: EventsDriver) -> None:
    events.install(INSTALLATION, BP)
    inventory = partner_event("INVENTORY_CHANGED", [resource_path(BP, item_id="inv-1", item_segment="item-quantities")])
    buyability = partner_event("BUYABILITY_CHANGED", [resource_path(BP, item_id="prod-1")], event_format="2024-01-01")
    answer, _ = events.handle(inventory, buyability)
    assert answer["batchItemFailures"] == []
    assert events.sandbox.calls["graphql:inventoryItem"] == 1 and events.sandbox.calls["graphql:product"] == 1
    assert _latest(events, "INVENTORY_ITEM", "inv-1") == _without_typename(make_inventory_item("inv-1"))
    product = _latest(events, "PRODUCT", "prod-1")
    assert product is not None and product["buyability"] == _without_typename(make_product("prod-1"))["buyability"]
    record = events.event_record(inventory["detail"]["eventId"])
    assert record is not None and record["outcome"] == "processed" and "raw" not in record  # its data is the snapshot


def test_a_buyability_event_carrying_its_product_is_kept_without_a_query(events: EventsDriver) -> None:
    events.install(INSTALLATION, BP)
    product = {"id": "prod-2", "sku": {"value": "s"}, "buyability": {"status": "NOT_BUYABLE"}}
    event = partner_event("BUYABILITY_CHANGED", [resource_path(BP, item_id="prod-2")], data={"product": product})
    answer, _ = events.handle(event)
    assert answer["batchItemFailures"] == []
    assert events.sandbox.calls["graphql:product"] == 0
    assert _latest(events, "PRODUCT", "prod-2") == product


def test_an_item_without_a_valid_msku_fails_the_event_without_retrying_it(events: EventsDriver) -> None:
    """The documented inventoryItem answer for an item with no valid MSKU: a ValidationError."""
    events.install(INSTALLATION, BP)
    event = partner_event("INVENTORY_CHANGED", [resource_path(BP, item_id="inv-3", item_segment="item-quantities")])
    error = {
        "message": "The buyable quantity cannot be determined because this item is associated with an invalid MSKU.",
        "path": ["inventoryItem"],
        "extensions": {"classification": {"type": "ValidationError", "code": "InvalidAmazonSkuConfiguration"}},
    }
    body = {"data": {"inventoryItem": {"inventoryItemId": "inv-3", "buyableQuantity": None}}, "errors": [error]}
    events.sandbox.fail_next("graphql", 200, body=body)
    answer, _ = events.handle(event)
    assert answer["batchItemFailures"] == []
    record = events.event_record(event["detail"]["eventId"])
    assert record is not None and record["outcome"] == "failed" and record["reason"] == "validation_error"
    assert _latest(events, "INVENTORY_ITEM", "inv-3") is None
