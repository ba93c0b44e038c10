"""Events under disorder (issue 9): legacy names hydrated by what they carry, idempotency keys scoped
by tenant, oversized fields recorded instead of poisoning the queue, snapshots ordered by the
server's version."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from events.envelope import parse_event
from tests.events_driver import EventsDriver

A, B = "amzn1.bwp.installation.disorder-a", "amzn1.bwp.installation.disorder-b"
BP_A, BP_B = "amzn1.bp.disorder-a", "amzn1.bp.disorder-b"
SOURCE = "aws.partner/buywithprime.com/test/events"


def legacy(event_type: str, order_id: str, installation_id: str, **detail: Any) -> dict[str, Any]:
    """The legacy partner format of Amazon's own samples: names, order and installation in `detail`."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": event_type,
        "source": SOURCE,
        "time": "2026-12-01T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventType": event_type,
            "orderIdentifier": {"orderId": order_id},
            "contextKeys": {"installationId": installation_id},
            **detail,
        },
    }


@pytest.mark.parametrize("event_type", ["ORDER_PLACED", "ORDER_UPDATED", "REFUND_SUCCESS"])
def test_legacy_named_order_events_are_hydrated_by_the_order_they_carry(events: EventsDriver, event_type: str) -> None:
    events.install(A)
    event = legacy(event_type, f"322-{event_type[:5]}-000001", A)
    assert parse_event(events.body(event)).received_type == event_type  # kept as received
    answer, _ = events.handle(event)
    assert answer == {"batchItemFailures": []}
    record = events.event_record(event["id"])
    assert record is not None and record["outcome"] == "processed"
    assert "raw" not in record  # hydrated, so the body is not kept
    snapshot = events.snapshot(A, f"322-{event_type[:5]}-000001")
    assert snapshot is not None and snapshot["id"] == f"322-{event_type[:5]}-000001"


def test_an_order_id_in_data_is_hydrated_too(events: EventsDriver) -> None:
    events.install(A)
    event = legacy("SOMETHING_ABOUT_AN_ORDER", "ignored", A)
    del event["detail"]["orderIdentifier"]
    event["detail"]["data"] = {"order": {"id": "322-DATA-000001"}}
    assert events.handle(event)[0] == {"batchItemFailures": []}
    assert events.snapshot(A, "322-DATA-000001") is not None


def test_idempotency_keys_are_scoped_by_tenant(events: EventsDriver) -> None:
    # given two tenants whose producers happen to use the same idempotency key
    events.install(A, BP_A)
    events.install(B, BP_B)
    first = events.order_event(BP_A, "322-KEYA-000001", idempotency_key="same-key")
    second = events.order_event(BP_B, "322-KEYB-000001", idempotency_key="same-key")
    # when both arrive (in one batch, and in two)
    events.handle(first)
    answer, _ = events.handle(second, deps=events.new_lambda())
    # then both are processed: neither is a duplicate of the other
    assert answer == {"batchItemFailures": []}
    for event in (first, second):
        record = events.event_record(parse_event(events.body(event)).event_id)
        assert record is not None and record["outcome"] == "processed"
    # and within one tenant the key still de-duplicates a producer's retry (new event ID, same key)
    retry = events.order_event(BP_A, "322-KEYA-000001", idempotency_key="same-key")
    events.handle(retry, deps=events.new_lambda())
    assert events.event_record(parse_event(events.body(retry)).event_id) is None
