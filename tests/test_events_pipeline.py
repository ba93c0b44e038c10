"""The events function end to end: SQS batch in, hydrated records and a partial batch response out."""

from __future__ import annotations

import json
import threading
import time

from devtools.atomic_dynamodb import AtomicDynamoDB
from devtools.sqs import sqs_record
from events.pipeline import Message
from sandbox.events import partner_event, resource_path
from tests.conftest import TABLE_NAME
from tests.events_driver import EventsDriver

INSTALLATION = "amzn1.bwp.installation.events"
OTHER = "amzn1.bwp.installation.other"
BP = "amzn1.bp.product.events"
OTHER_BP = "amzn1.bp.product.other"


def test_an_order_event_is_hydrated_and_kept_as_the_latest_snapshot(events: EventsDriver) -> None:
    # given an installed app whose business product is linked to it
    events.install(INSTALLATION, BP)
    envelope = events.order_event(BP, "322-0000001-0000001")
    # when the event arrives
    answer, _ = events.handle(envelope)
    # then
    assert answer == {"batchItemFailures": []}
    snapshot = events.snapshot(INSTALLATION, "322-0000001-0000001")
    assert snapshot is not None and snapshot["id"] == "322-0000001-0000001"
    assert snapshot["lineItems"] and "packageInformation" in snapshot
    record = events.event_record(envelope["detail"]["eventId"])
    assert record is not None
    assert record["outcome"] == "processed"
    assert record["event_type"] == "ORDER_CONFIRMED"
    assert record["installation_id"] == INSTALLATION
    assert "raw" not in record  # the snapshot holds the data
    assert events.sandbox.calls["graphql:order"] == 1
    store = events.items_with_pk_prefix(f"INSTALLATION#{INSTALLATION}")
    assert any(i["sk"]["S"] == "STORE" and i["site_id"]["S"] for i in store)  # store identity kept


def test_legacy_events_route_by_context_keys_and_teach_the_link(events: EventsDriver) -> None:
    events.install(INSTALLATION)
    legacy = events.order_event(BP, "o-legacy", event_format="legacy", installation_id=INSTALLATION)
    answer, _ = events.handle(legacy)
    assert answer["batchItemFailures"] == []
    assert events.snapshot(INSTALLATION, "o-legacy") is not None
    # the link learned from the legacy event now routes a thin 2024-01-01 event of the same product
    thin = events.order_event(BP, "o-thin", event_format="2024-01-01", event_type="REFUND_REQUESTED")
    answer, _ = events.handle(thin, deps=events.new_lambda())
    assert answer["batchItemFailures"] == []
    assert events.snapshot(INSTALLATION, "o-thin") is not None
    record = events.event_record(thin["id"])
    assert record is not None and record["installation_id"] == INSTALLATION


def test_a_mixed_batch_reports_exactly_the_transient_failures(events: EventsDriver) -> None:
    # given one healthy installation and one whose token must be refreshed while the token endpoint is down
    events.install(INSTALLATION, BP)
    events.install(OTHER, OTHER_BP, expired=True)
    events.sandbox.fail_next("token", 503, times=20)
    good = [events.order_event(BP, f"o-good-{i}") for i in range(3)]
    blocked = [events.order_event(OTHER_BP, f"o-blocked-{i}") for i in range(2)]
    unknown_type = partner_event("BRAND_NEW_TYPE", [resource_path(BP)])
    unroutable = events.order_event("amzn1.bp.product.unknown", "o-nobody")
    malformed = "{not json"
    # when they arrive in one batch
    answer, ids = events.handle(*good, *blocked, unknown_type, unroutable, malformed)
    # then only the blocked installation's events go back to the queue
    assert events.failed_ids(answer) == sorted(ids[3:5])
    for envelope in good:
        record = events.event_record(envelope["detail"]["eventId"])
        assert record is not None and record["outcome"] == "processed"
    for envelope in blocked:
        assert events.event_record(envelope["detail"]["eventId"]) is None  # nothing recorded: retried whole
    unknown = events.event_record(unknown_type["detail"]["eventId"])
    assert unknown is not None and unknown["outcome"] == "processed" and json.loads(unknown["raw"]) == unknown_type
    assert [i["event_id"]["S"] for i in events.items_with_pk_prefix("ATTENTION#unroutable")] == [
        unroutable["detail"]["eventId"]
    ]
    failed = events.items_with_pk_prefix("ATTENTION#failed")
    assert [(i["event_id"]["S"], i["reason"]["S"], i["raw"]["S"]) for i in failed] == [
        (f"sqs:{ids[-1]}", "malformed_json", malformed)
    ]


def test_a_redelivered_event_neither_calls_the_api_nor_writes_again(events: EventsDriver) -> None:
    events.install(INSTALLATION, BP)
    envelope = events.order_event(BP, "o-dup")
    events.handle(envelope)
    calls = events.sandbox.calls["graphql:order"]
    before = events.items_with_pk_prefix("")
    answer, _ = events.handle(envelope, deps=events.new_lambda())
    assert answer["batchItemFailures"] == []
    assert events.sandbox.calls["graphql:order"] == calls
    assert events.items_with_pk_prefix("") == before


def test_duplicates_inside_one_batch_and_by_idempotency_key(events: EventsDriver) -> None:
    events.install(INSTALLATION, BP)
    first = events.order_event(BP, "o-key", idempotency_key="same-key")
    same_key_new_id = events.order_event(BP, "o-key", idempotency_key="same-key")
    answer, _ = events.handle(first, first, same_key_new_id)
    assert answer["batchItemFailures"] == []
    assert events.sandbox.calls["graphql:order"] == 1
    assert events.event_record(first["detail"]["eventId"]) is not None
    assert events.event_record(same_key_new_id["detail"]["eventId"]) is None
    # and across batches, a new event ID with an idempotency key already processed is a duplicate
    again = events.order_event(BP, "o-key", idempotency_key="same-key")
    events.handle(again, deps=events.new_lambda())
    assert events.event_record(again["detail"]["eventId"]) is None


def test_two_deliveries_racing_each_other_have_one_effect(events: EventsDriver) -> None:
    """Both pass the consistent lookup before either writes: the event record's conditional put
    decides, one is processed, the other a duplicate; the table holds one of everything."""
    events.install(INSTALLATION, BP)
    envelope = events.order_event(BP, "o-race")
    events.sandbox.latency("graphql", 0.3)  # both pass the lookup before either records
    verdicts: list[str] = []
    lambdas = [events.new_lambda(), events.new_lambda()]
    barrier = threading.Barrier(2)

    def deliver(index: int) -> None:
        barrier.wait()
        [result] = lambdas[index].pipeline.process([Message(f"m-{index}", json.dumps(envelope))])
        verdicts.append(result.verdict.value)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(verdicts) == ["duplicate", "processed"]
    assert events.items_with_pk_prefix("EVENT#") == []  # recorded under its idempotency key, once
    assert len(events.items_with_pk_prefix("EVENT_KEY#")) == 1
    assert len(events.items_with_pk_prefix("ORDERS#")) == 1  # one version of the order, written twice


def test_ten_events_of_one_installation_refresh_its_token_once(events: EventsDriver) -> None:
    events.install(INSTALLATION, BP, expired=True)
    envelopes = [events.order_event(BP, f"o-refresh-{i}") for i in range(10)]
    answer, _ = events.handle(*envelopes)
    assert answer["batchItemFailures"] == []
    assert events.sandbox.calls["token:refresh_token"] == 1
    assert events.sandbox.calls["graphql:order"] == 10


def test_one_lookup_one_token_read_and_one_write_per_event(events: EventsDriver) -> None:
    # given a warm Lambda that has seen this installation once
    events.install(INSTALLATION, BP)
    events.handle(events.order_event(BP, "o-warm"))
    client = events.lambda_deps.dynamodb
    client.calls.clear()
    # when a batch of ten events of the installation arrives
    events.handle(*[events.order_event(BP, f"o-count-{i}") for i in range(10)])
    # then: one batch lookup, no token read (cached); the ten snapshots in one BatchWriteItem, then
    # one conditional put per record (under its idempotency key: no transaction)
    assert client.calls.count("batch_get_item") == 1 and client.calls.count("batch_write_item") in (1, 2)
    assert client.calls.count("put_item") == 10 and client.calls.count("transact_write_items") == 0
    assert len(client.calls) <= 13


def test_a_cold_lambda_reads_no_installation_item_per_tenant(events: EventsDriver) -> None:
    """Cold caches, ten tenants: the tokens and store identities come with the batch's lookups
    (links first, then the installations they name), not with a GetItem per installation."""
    tenants = [(f"amzn1.bwp.installation.cold-{i}", f"bp-cold-{i}") for i in range(10)]
    for installation_id, business_product in tenants:
        events.install(installation_id, business_product)
        events.store.put_store_identity(installation_id, {"siteId": "s", "widgetId": "w"}, 1)
    cold = events.new_lambda()
    client = cold.dynamodb
    answer, _ = events.handle(*[events.order_event(bp, f"o-cold-{i}") for i, (_, bp) in enumerate(tenants)], deps=cold)
    assert answer["batchItemFailures"] == []
    assert client.calls.count("get_item") == 0
    assert client.calls.count("batch_get_item") == 2  # events, keys and links; then the installations
    # the ten tenants' snapshots share a BatchWriteItem (two if an answer comes after the linger)
    assert client.calls.count("batch_write_item") in (1, 2)
    assert client.calls.count("put_item") == 10 and client.calls.count("transact_write_items") == 0
    assert events.sandbox.calls["token:refresh_token"] == 0


def test_throttling_then_success_is_retried_in_process(events: EventsDriver) -> None:
    events.install(INSTALLATION, BP)
    events.handle(events.order_event(BP, "o-warmup"))
    events.sandbox.throttle_next(times=2)
    envelope = events.order_event(BP, "o-throttled")
    answer, _ = events.handle(envelope)
    assert answer["batchItemFailures"] == []
    assert events.snapshot(INSTALLATION, "o-throttled") is not None


def test_persistent_5xx_is_reported_for_sqs_to_retry(events: EventsDriver) -> None:
    events.install(INSTALLATION, BP)
    events.handle(events.order_event(BP, "o-warmup"))
    events.sandbox.fail_next("graphql", 503, times=20)
    envelope = events.order_event(BP, "o-unavailable")
    answer, ids = events.handle(envelope)
    assert events.failed_ids(answer) == ids
    assert events.event_record(envelope["detail"]["eventId"]) is None
    events.sandbox.faults.clear()
    answer, _ = events.handle(envelope)  # SQS delivers it again later
    assert answer["batchItemFailures"] == []
    assert events.snapshot(INSTALLATION, "o-unavailable") is not None


def test_an_installation_needing_reauthorisation_keeps_its_events_without_burning_retries(events: EventsDriver) -> None:
    events.install(INSTALLATION, BP, expired=True)
    events.sandbox.revoke_refresh_tokens(INSTALLATION)
    envelope = events.order_event(BP, "o-reauth")
    answer, _ = events.handle(envelope)
    assert answer["batchItemFailures"] == []
    record = events.event_record(envelope["detail"]["eventId"])
    assert record is not None and record["outcome"] == "needs_reauthorization"
    kept = events.items_with_pk_prefix("ATTENTION#needs_reauthorization")
    assert [json.loads(i["raw"]["S"]) for i in kept] == [envelope]


_ACCESS_DENIED = {
    "errors": [
        {
            "message": "denied",
            "extensions": {"classification": {"type": "AccessDeniedError", "errorCode": "ACCESS_DENIED"}},
        }
    ]
}


def test_permanent_api_errors_are_recorded_not_retried(events: EventsDriver) -> None:
    events.install(INSTALLATION, BP)
    events.sandbox.put_order(INSTALLATION, "o-missing", None)
    missing = events.order_event(BP, "o-missing")
    answer, _ = events.handle(missing)
    assert answer["batchItemFailures"] == []
    record = events.event_record(missing["detail"]["eventId"])
    assert record is not None and (record["outcome"], record["reason"]) == ("failed", "resource_not_found")
    # access denied although the token should be valid, and still after one refresh: recorded
    events.sandbox.put_order(INSTALLATION, "o-denied", {"id": "o-denied", "lineItems": []})
    denied = events.order_event(BP, "o-denied")
    events.sandbox.fail_next("graphql", 200, times=2, body=_ACCESS_DENIED)
    answer, _ = events.handle(denied)
    assert answer["batchItemFailures"] == []
    record = events.event_record(denied["detail"]["eventId"])
    assert record is not None and (record["outcome"], record["reason"]) == ("failed", "access_denied")
    assert events.sandbox.calls["token:refresh_token"] == 1  # refreshed once, retried once, no more


def test_a_revoked_access_token_is_replaced_once_and_the_event_hydrated(events: EventsDriver) -> None:
    """Issue 8, case 5: the cached token is revoked; forget it, refresh once, retry once."""
    events.install(INSTALLATION, BP)
    first = events.order_event(BP, "o-before")
    events.sandbox.put_order(INSTALLATION, "o-before", {"id": "o-before", "lineItems": []})
    assert events.handle(first)[0]["batchItemFailures"] == []  # the container now caches a token
    events.sandbox.revoke_access_tokens(INSTALLATION)
    events.sandbox.put_order(INSTALLATION, "o-revoked", {"id": "o-revoked", "lineItems": []})
    revoked = events.order_event(BP, "o-revoked")
    answer, _ = events.handle(revoked)
    assert answer["batchItemFailures"] == []
    record = events.event_record(revoked["detail"]["eventId"])
    assert record is not None and record["outcome"] == "processed"
    assert events.snapshot(INSTALLATION, "o-revoked") is not None
    assert events.sandbox.calls["token:refresh_token"] == 1


def test_an_unroutable_event_is_replayable_once_a_link_exists(events: EventsDriver) -> None:
    events.install(INSTALLATION)
    envelope = events.order_event("amzn1.bp.product.late", "o-late")
    answer, _ = events.handle(envelope)
    assert answer["batchItemFailures"] == []  # not retried forever
    [waiting] = events.store.attention("unroutable")
    assert waiting.business_product_id == "amzn1.bp.product.late"
    # the operator registers the link and replays the kept body
    events.store.put_link("amzn1.bp.product.late", INSTALLATION, "operator")
    answer, _ = events.handle(waiting.raw or "", deps=events.new_lambda())
    assert answer["batchItemFailures"] == []
    assert events.snapshot(INSTALLATION, "o-late") is not None
    assert events.store.attention("unroutable") == []  # the attention item went with the success
    record = events.event_record(envelope["detail"]["eventId"])
    assert record is not None and record["outcome"] == "processed"
    # recorded under its idempotency key now; the unroutable record under its ID went in the same request
    assert envelope["detail"]["idempotencyKey"] and events.items_with_pk_prefix("EVENT#") == []


def test_events_of_one_order_in_a_batch_query_it_once(events: EventsDriver) -> None:
    events.install(INSTALLATION, BP)
    delivered = events.order_event(BP, "o-same", event_type="PACKAGE_DELIVERED")
    refund = events.order_event(BP, "o-same", event_type="REFUND_REQUESTED")
    answer, _ = events.handle(delivered, refund)
    assert answer["batchItemFailures"] == []
    assert events.sandbox.calls["graphql:order"] == 1
    assert events.event_record(delivered["detail"]["eventId"]) is not None
    assert events.event_record(refund["detail"]["eventId"]) is not None


def test_an_uninstalled_installation_makes_its_events_unroutable(events: EventsDriver) -> None:
    events.install(INSTALLATION, BP)
    events.store._client.update_item(
        TableName=events.table,
        Key={"pk": {"S": f"INSTALLATION#{INSTALLATION}"}, "sk": {"S": "INSTALLATION"}},
        UpdateExpression="SET #s = :u REMOVE access_token, refresh_token",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":u": {"S": "uninstalled"}},
    )
    envelope = events.order_event(BP, "o-gone")
    answer, _ = events.handle(envelope)
    assert answer["batchItemFailures"] == []
    record = events.event_record(envelope["detail"]["eventId"])
    assert record is not None and (record["outcome"], record["reason"]) == ("unroutable", "installation_not_found")


def test_case_4_a_batch_waiting_on_another_containers_refresh_ends_inside_its_lambdas_time(
    events: EventsDriver,
) -> None:
    """Issue 8, case 4: a lease held elsewhere and an expired token; the production budget would
    wait 10 s, but this invocation has 6 s: it answers (the record back to the queue) before Lambda
    would kill it, and never calls the token endpoint."""
    from devtools.apigw import LambdaContext
    from events import handler
    from shared.store.installations import InstallationStore

    events.install(INSTALLATION, BP, expired=True)
    stored = InstallationStore(AtomicDynamoDB(), TABLE_NAME).get(INSTALLATION)
    assert stored is not None and stored.refresh_token
    InstallationStore(AtomicDynamoDB(), TABLE_NAME).acquire_refresh_lease(
        INSTALLATION, "another-container", stored.refresh_token, int(time.time()), 60
    )
    envelope = events.order_event(BP, "o-waiting")
    record = sqs_record(envelope)
    started = time.monotonic()
    answer = handler.handle({"Records": [record]}, LambdaContext("EventsFunction", timeout=6.0), events.lambda_deps)
    elapsed = time.monotonic() - started
    assert elapsed < 6.0, f"the batch ran {elapsed:.1f} s in a 6 s invocation"
    assert answer["batchItemFailures"] == [{"itemIdentifier": record["messageId"]}]
    assert events.sandbox.calls["token:refresh_token"] == 0 and events.sandbox.calls["graphql:order"] == 0
