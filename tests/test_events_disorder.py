"""Events under disorder (issue 9): legacy names hydrated by what they carry, idempotency keys scoped
by tenant, oversized fields recorded instead of poisoning the queue, snapshots ordered by the
server's version."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from devtools.apigw import LambdaContext
from devtools.sqs import sqs_record
from events import handler
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


def _thin(business_product_id: str, order_id: str, **kw: Any) -> dict[str, Any]:
    return EventsDriver.order_event(business_product_id, order_id, **kw)


def _changed(event: dict[str, Any], *, detail: dict[str, Any] | None = None, **envelope: Any) -> dict[str, Any]:
    """The event with envelope fields replaced and detail fields replaced (None: removed)."""
    changed = {**event, **envelope, "detail": dict(event["detail"])}
    for name, value in (detail or {}).items():
        if value is None:
            changed["detail"].pop(name, None)
        else:
            changed["detail"][name] = value
    return changed


OVERSIZED = {
    "order-id-1.5KB": lambda: _thin(BP_A, "322-" + "O" * 1500),
    "event-id-512-chars-of-4-bytes": lambda: _changed(
        _thin(BP_A, "322-EVID-000001"), detail={"eventId": "\U0001f600" * 512}
    ),
    "event-time-over-1KB": lambda: _changed(
        _thin(BP_A, "322-TIME-000001"), detail={"eventTime": "2026-12-01T10:00:00Z" + "9" * 1100}
    ),
    "business-product-over-2KB": lambda: _thin("amzn1.bp." + "b" * 2100, "322-BPID-000001"),
    "resources-over-100KB": lambda: _changed(
        _thin(BP_A, "322-RSRC-000001"),
        resources=[f"businessProduct/{BP_A}/order/322-RSRC-000001/x/{'r' * 1000}-{i}" for i in range(120)],
    ),
    "lone-surrogate-in-event-id": lambda: _changed(_thin(BP_A, "322-SURR-000001"), detail={"eventId": "evt-\ud800"}),
}


@pytest.mark.parametrize("name", sorted(OVERSIZED))
def test_a_field_over_dynamodb_limits_is_recorded_failed_and_the_rest_goes_on(events: EventsDriver, name: str) -> None:
    # given a batch of 9 ordinary events and one whose field cannot be written as it is
    events.install(A, BP_A)
    bad = OVERSIZED[name]()
    good = [_thin(BP_A, f"322-GOOD-{i:06d}") for i in range(9)]
    # when the batch is handled
    answer, message_ids = events.handle(*good[:5], bad, *good[5:])
    # then nothing goes back to the queue: the bad one is recorded as failed, the others processed
    assert answer == {"batchItemFailures": []}
    bad_record = events.event_record(f"sqs:{message_ids[5]}")
    assert bad_record is not None
    assert (bad_record["outcome"], bad_record["reason"]) == ("failed", "schema_violation")
    assert "raw" not in bad_record  # its body is kept once, on its attention item
    (kept,) = [
        i for i in events.items_with_pk_prefix("ATTENTION#failed#") if i["event_id"]["S"] == bad_record["event_id"]
    ]
    assert 0 < len(kept["raw"]["S"].encode()) <= 200_000
    for event in good:
        record = events.event_record(parse_event(events.body(event)).event_id)
        assert record is not None and record["outcome"] == "processed"


def test_a_body_far_over_400KB_is_kept_bounded(events: EventsDriver) -> None:
    events.install(A, BP_A)
    event = _thin(BP_A, "322-HUGE-000001", event_type="SOMETHING_NEW")
    event["resources"] = [f"businessProduct/{BP_A}"]  # no order: stored as received, raw kept
    event["detail"]["data"] = {"blob": "\u00e9" * 400_000}  # 800 KB of UTF-8
    answer, _ = events.handle(event)
    assert answer == {"batchItemFailures": []}
    record = events.event_record(parse_event(events.body(event)).event_id)
    assert record is not None and record["outcome"] == "processed"
    assert len(record["raw"].encode()) <= 200_000


def _order(order_id: str, updated_at: str, state: str) -> dict[str, Any]:
    return {"id": order_id, "updatedAt": updated_at, "lineItems": [{"id": "li-1", "state": state}]}


def test_an_older_order_answer_never_replaces_a_newer_snapshot(events: EventsDriver) -> None:
    events.install(A, BP_A)
    order_id = "322-VERS-000001"
    # given the order's newer state is stored
    events.sandbox.put_order(A, order_id, _order(order_id, "2026-12-01T10:05:00Z", "SHIPPED"))
    events.handle(_thin(BP_A, order_id))
    # when a later fetch (a slow answer, another container) returns an older state of the order
    events.sandbox.put_order(A, order_id, _order(order_id, "2026-12-01T10:00:00.500Z", "PENDING"))
    answer, _ = events.handle(_thin(BP_A, order_id), deps=events.new_lambda())
    # then the event is processed, and the snapshot keeps the newer state
    assert answer == {"batchItemFailures": []}
    snapshot = events.snapshot(A, order_id)
    assert snapshot is not None and snapshot["lineItems"][0]["state"] == "SHIPPED"
    # and a genuinely newer state replaces it
    events.sandbox.put_order(A, order_id, _order(order_id, "2026-12-01T10:06:00+00:00", "DELIVERED"))
    events.handle(_thin(BP_A, order_id), deps=events.new_lambda())
    snapshot = events.snapshot(A, order_id)
    assert snapshot is not None and snapshot["lineItems"][0]["state"] == "DELIVERED"


def test_the_same_version_fetched_later_wins_the_tie(events: EventsDriver) -> None:
    events.install(A, BP_A)
    order_id = "322-TIE0-000001"
    events.sandbox.put_order(A, order_id, _order(order_id, "2026-12-01T10:05:00Z", "SHIPPED"))
    events.handle(_thin(BP_A, order_id))
    later = {**_order(order_id, "2026-12-01T10:05:00Z", "SHIPPED"), "totalPrice": {"amount": 2, "currencyCode": "USD"}}
    events.sandbox.put_order(A, order_id, later)
    events.handle(_thin(BP_A, order_id), deps=events.new_lambda())
    snapshot = events.snapshot(A, order_id)
    assert snapshot is not None and snapshot["totalPrice"] == {"amount": 2, "currencyCode": "USD"}


def test_a_batch_short_of_time_writes_what_it_finished_and_returns_only_the_rest(events: EventsDriver) -> None:
    # given ten orders of one installation, one query at a time, each answer taking 0.4 s
    events.install(A, BP_A)
    deps = events.new_lambda()
    deps.settings = deps.settings.model_copy(update={"hydration_max_workers": 1})
    events.sandbox.latency("graphql", 0.4)
    batch = [_thin(BP_A, f"322-TIME-{i:06d}") for i in range(10)]
    # when the invocation has time for only some (a query starts while one attempt, 13.05 s, plus the
    # store reserve, 6 s, still fit: 21 s left at the start leaves about 2 s of starts)
    records = [sqs_record(events.body(event)) for event in batch]
    answer = handler.handle({"Records": records}, LambdaContext("EventsFunction", timeout=22.0), deps)
    # then the finished events are processed and stored, only the unstarted ones go back
    failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
    assert 0 < len(failed) < 10
    for record, event in zip(records, batch, strict=True):
        stored = events.event_record(parse_event(events.body(event)).event_id)
        if record["messageId"] in failed:
            assert stored is None
        else:
            assert stored is not None and stored["outcome"] == "processed"


def test_a_message_is_decided_once() -> None:
    """The pipeline's one typed decision per message: a second step deciding again is a bug, loudly."""
    from events.pipeline import Message, Reason, Verdict, _Work, pending

    work = _Work(Message("m-1", "{}"))
    assert pending([work]) == [work]
    work.decide(Verdict.UNROUTABLE, Reason.INSTALLATION_NOT_FOUND)
    assert pending([work]) == []
    with pytest.raises(RuntimeError, match="decided twice"):
        work.decide(Verdict.RETRY, Reason.TOKEN, "TimeoutError")
    assert work.decision is not None and work.decision.text == "installation_not_found"


def test_one_merchants_snapshots_and_everyones_attention_items_spread_over_partitions(events: EventsDriver) -> None:
    # given a flash sale of one merchant: 40 orders in four batches, and 30 unroutable events
    events.install(A, BP_A)
    for start in range(0, 40, 10):
        events.handle(*[_thin(BP_A, f"322-HOT0-{i:06d}") for i in range(start, start + 10)])
    for start in range(0, 30, 10):
        events.handle(*[_thin(f"amzn1.bp.nobody-{i}", f"322-NONE-{i:06d}") for i in range(start, start + 10)])
    # then the snapshots use most of the merchant's 16 partitions, none the token item's
    partitions = {i["pk"]["S"] for i in events.items_with_pk_prefix(f"ORDERS#{A}#")}
    assert len(partitions) >= 12
    assert all(p.startswith(f"ORDERS#{A}#") for p in partitions)
    # and the attention items several partitions of their outcome, still listed oldest first as one
    attention = {i["pk"]["S"] for i in events.items_with_pk_prefix("ATTENTION#unroutable#")}
    assert len(attention) >= 5
    listed = events.store.attention("unroutable", limit=100)
    assert len(listed) == 30 and [a.sort_key for a in listed] == sorted(a.sort_key for a in listed)


def test_a_revoked_app_ends_in_reauthorization_even_when_the_replacement_token_is_refused_too(
    events: EventsDriver,
) -> None:
    # given container X caching token T1, and container Y that then refreshed the pair (T2 stored)
    events.install(A, BP_A)
    x = events.lambda_deps
    assert events.handle(_thin(BP_A, "322-REVK-000001"), deps=x)[0] == {"batchItemFailures": []}
    first = x.tokens.access_token(A)
    y = events.new_lambda()
    assert y.tokens.replace_rejected(A, first) != first
    # when the merchant revokes the app (every token) and X meets its next order event
    events.sandbox.revoke_access_tokens(A)
    events.sandbox.revoke_refresh_tokens(A)
    event = _thin(BP_A, "322-REVK-000002")
    assert events.handle(event, deps=x)[0] == {"batchItemFailures": []}
    # then T1 is refused, its replacement T2 (Y's) is refused too, and replacing that one meets
    # invalid_grant: the event waits for re-authorisation, it is not a permanent failure
    record = events.event_record(parse_event(events.body(event)).event_id)
    assert record is not None and record["outcome"] == "needs_reauthorization"
