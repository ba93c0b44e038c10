"""Every documented format and type parses into one normalised PartnerEvent."""

from __future__ import annotations

import json

import pytest

from events.envelope import MalformedEventError, parse_event
from events.event_types import ALIASES, ORDER_LINKED, OTHER_KNOWN, canonical
from events.resources import parse_resources
from sandbox.events import partner_event, resource_path

BP = "amzn1.bp.product.0001"
ALL_TYPES = sorted(ORDER_LINKED | OTHER_KNOWN)
FORMATS = ["2024-11-01", "2024-01-01", "legacy"]


_RESOURCE_KINDS = [
    ("PACKAGE_TRACKER", {"carrier_code": "AMZN_US", "tracking_number": "TBA123"}),
    ("BUYABILITY", {"item_id": "item-1", "item_segment": "items"}),
    ("INVENTORY", {"item_id": "item-1", "item_segment": "items"}),
    ("PERSONAL_DATA", {"privacy_task_id": "task-1"}),
    ("REFUND", {"order_id": "322-ABC1-AAAAAA", "refund_id": "refund-1"}),
    ("RETURN", {"order_id": "322-ABC1-AAAAAA", "return_id": "return-1"}),
    ("PACKAGE", {"order_id": "322-ABC1-AAAAAA", "delivery_id": "delivery-1"}),
]


def _resources_for(event_type: str) -> list[str]:
    ids = next(
        (ids for prefix, ids in _RESOURCE_KINDS if event_type.startswith(prefix)), {"order_id": "322-ABC1-AAAAAA"}
    )
    return [resource_path(BP, **ids)]


@pytest.mark.parametrize("event_format", FORMATS)
@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_every_type_in_every_format_parses(event_type: str, event_format: str) -> None:
    envelope = partner_event(
        event_type,
        _resources_for(event_type),
        event_format=event_format,  # type: ignore[arg-type]
        installation_id="inst-1",
    )
    event = parse_event(json.dumps(envelope))
    assert event.event_type == event_type
    assert event.format == event_format
    assert event.ids.business_product_id == BP
    assert event.installation_id == ("inst-1" if event_format == "legacy" else None)
    if event_format == "2024-11-01":
        assert event.event_id == envelope["detail"]["eventId"]
        assert event.idempotency_key == envelope["detail"]["idempotencyKey"]
    else:
        assert event.event_id == envelope["id"]


@pytest.mark.parametrize("old,new", sorted(ALIASES.items()))
def test_deprecated_names_are_accepted_as_aliases(old: str, new: str) -> None:
    event = parse_event(json.dumps(partner_event(old, _resources_for(new))))
    assert event.event_type == new
    assert event.received_type == old


def test_an_unknown_type_passes_through() -> None:
    event = parse_event(json.dumps(partner_event("SOMETHING_NEW_2027", [f"businessProduct/{BP}"])))
    assert event.event_type == "SOMETHING_NEW_2027"


def test_account_may_be_absent() -> None:
    event = parse_event(json.dumps(partner_event("ORDER_CONFIRMED", _resources_for("ORDER_CONFIRMED"), account=None)))
    assert event.ids.order_id == "322-ABC1-AAAAAA"


@pytest.mark.parametrize(
    "path,expected",
    [
        ("businessProduct/bp/order/o-1", {"business_product_id": "bp", "order_id": "o-1"}),
        (
            "businessProduct/bp/order/o-1/refund/r-1",
            {"business_product_id": "bp", "order_id": "o-1", "refund_id": "r-1"},
        ),
        ("businessProduct/bp/order/o-1/return/x", {"business_product_id": "bp", "order_id": "o-1", "return_id": "x"}),
        ("businessProduct/bp/order/o/delivery/d", {"business_product_id": "bp", "order_id": "o", "delivery_id": "d"}),
        ("businessProduct/bp/items/i-9", {"business_product_id": "bp", "item_id": "i-9"}),
        ("businessProduct/bp/item-quantities/i-9", {"business_product_id": "bp", "inventory_item_id": "i-9"}),
        (
            "businessProduct/bp/carrier/UPS/tracker/1Z",
            {"business_product_id": "bp", "carrier_code": "UPS", "tracking_number": "1Z"},
        ),
        ("businessProduct/bp/personalDataDeletionTask/t", {"business_product_id": "bp", "privacy_task_id": "t"}),
        ("businessProduct/bp/personalDataRetrievalTask/t", {"business_product_id": "bp", "privacy_task_id": "t"}),
        ("arn:aws:x/businessProduct/bp/order/o", {"business_product_id": "bp", "order_id": "o"}),
        ("something/else", {}),
    ],
)
def test_resources_are_typed(path: str, expected: dict[str, str]) -> None:
    assert parse_resources([path]).model_dump(exclude_none=True) == expected


@pytest.mark.parametrize(
    "body,reason",
    [
        ("not json {", "malformed_json"),
        ("[1, 2]", "schema_violation"),
        (json.dumps({"id": "x", "source": "aws.partner/buywithprime/a"}), "schema_violation"),
        (
            json.dumps(
                {"id": "x", "detail-type": "ORDER_CONFIRMED", "source": "aws.partner/buywithprime/a", "detail": "x"}
            ),
            "schema_violation",
        ),
        (
            json.dumps({"id": "x", "detail-type": "ORDER_CONFIRMED", "source": "com.example.other", "detail": {}}),
            "foreign_source",
        ),
        (json.dumps({"id": "x" * 600, "detail-type": "T", "source": "aws.partner/buywithprime/a"}), "schema_violation"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body: str, reason: str) -> None:
    with pytest.raises(MalformedEventError) as refused:
        parse_event(body)
    assert refused.value.reason == reason


def test_canonical_is_case_insensitive_and_trims() -> None:
    assert canonical(" delivery_completed ") == "PACKAGE_DELIVERED"
