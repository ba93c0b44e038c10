"""Buy with Prime events end to end on the local stack: the local bus -> the template's rule -> the
events queue -> the real events handler (fed by the stack's SQS poller, driven here batch by batch)
-> the moto table; sandbox faults; the dead-letter queue and `bwpctl redrive`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bwpctl.__main__ import main as bwpctl
from devtools.demo import without_typename
from devtools.local_stack import LocalStack, SqsPoller
from sandbox.catalog import make_order, make_store
from sandbox.events import partner_event, resource_path
from shared.store.event_records import EventStore
from shared.store.keys import INSTALLATION_PREFIX, STORE_SK, snapshot_prefix
from tests.e2e.merchant import install

pytestmark = pytest.mark.e2e

INSTALLATION = "amzn1.bwp.installation.e2e-flow"
PRODUCT = "amzn1.bp.product.e2e-flow"
FOREIGN_SOURCE = "com.example.storefront"
NEW_TYPE = "SOMETHING_NEW_HAPPENED"  # a type Buy with Prime may add tomorrow
WAIT = 40  # seconds: the longest any test waits for the queue to empty


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """Installed through the OAuth flow, the business product linked by the operator, and the
    store identity known (one event processed), so every test starts from a warm function."""
    with LocalStack(background_polling=False, retry_delay_seconds=0) as running:
        assert install(running, INSTALLATION).status == 200
        assert run_bwpctl(running, "link", PRODUCT, INSTALLATION) == 0
        running.publish(partner_event("INVENTORY_CHANGED", [resource_path(PRODUCT, item_id="warm-up")]))
        assert poller_of(running).run_until_idle(timeout=WAIT).failed == 0
        assert events(running).has_store_identity(INSTALLATION)
        yield running


@pytest.fixture(autouse=True)
def _no_fault_outlives_its_test(stack: LocalStack) -> Iterator[None]:
    yield
    stack.sandbox.faults.clear()


@pytest.fixture
def poller(stack: LocalStack) -> SqsPoller:
    return poller_of(stack)


def poller_of(stack: LocalStack) -> SqsPoller:
    return stack.pollers["EventsFunction.PartnerEventsQueue"]


def events(stack: LocalStack) -> EventStore:
    return EventStore(stack.client("dynamodb"), stack.aws.table_name())


def run_bwpctl(stack: LocalStack, *command: str) -> int:
    """bwpctl as an operator runs it against this stack: every name and the endpoint explicit."""
    aws = stack.aws
    return bwpctl(
        [
            *("--table", aws.table_name()),
            *("--queue-url", aws.queue_url("EventsQueue")),
            *("--dlq-url", aws.queue_url("EventsDeadLetterQueue")),
            *("--endpoint-url", aws.endpoint_url),
            *command,
        ]
    )


def publish(stack: LocalStack, envelope: dict[str, Any]) -> str:
    """The ID the pipeline keys the event on: detail.eventId (2024-11-01), else EventBridge's."""
    eventbridge_id = stack.publish(envelope)
    return str((envelope.get("detail") or {}).get("eventId") or eventbridge_id)


def depth(stack: LocalStack, logical_id: str) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.aws.queue_url(logical_id),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def table_items(stack: LocalStack, prefix: str) -> list[dict[str, Any]]:
    dynamodb = stack.client("dynamodb")
    request: dict[str, Any] = {
        "TableName": stack.aws.table_name(),
        "FilterExpression": "begins_with(pk, :prefix)",
        "ExpressionAttributeValues": {":prefix": {"S": prefix}},
    }
    items: list[dict[str, Any]] = []
    while True:
        page = dynamodb.scan(**request)
        items += [{k: next(iter(v.values())) for k, v in item.items()} for item in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def event_records(stack: LocalStack, event_id: str) -> list[dict[str, Any]]:
    """Under EVENT#<id>, or under EVENT_KEY#<key> once processed with an idempotency key."""
    return [item for item in table_items(stack, "EVENT") if item.get("event_id") == event_id]


def snapshots(stack: LocalStack, order_id: str) -> list[dict[str, Any]]:
    wanted = snapshot_prefix("ORDER", order_id)
    return [item for item in table_items(stack, "ORDERS#" + INSTALLATION) if item["sk"].startswith(wanted)]


def graphql_calls(stack: LocalStack) -> int:
    return int(stack.sandbox.calls["graphql"])


def test_events_of_every_format_become_event_records_and_order_snapshots(stack: LocalStack, poller: SqsPoller) -> None:
    link = events(stack).lookup([], [], [PRODUCT]).links
    assert link == {PRODUCT: INSTALLATION}  # registered by bwpctl link in the fixture
    first, second, third = "322-2000001-0000001", "322-2000001-0000002", "322-2000001-0000003"
    sent = {
        publish(
            stack, partner_event("ORDER_CONFIRMED", [resource_path(PRODUCT, order_id=first)], event_format="2024-11-01")
        ): ("ORDER_CONFIRMED", "ORDER_CONFIRMED", "2024-11-01", first),
        publish(
            stack,
            partner_event(
                "DELIVERY_IN_TRANSIT",  # deprecated on 2024-12-04
                [resource_path(PRODUCT, order_id=second, delivery_id="delivery-1")],
                event_format="2024-01-01",
            ),
        ): ("PACKAGE_DELIVERY_IN_TRANSIT", "DELIVERY_IN_TRANSIT", "2024-01-01", second),
        publish(
            stack,
            partner_event(
                "REFUND_REQUESTED",
                [resource_path(PRODUCT, order_id=third, refund_id="refund-1")],
                event_format="legacy",
                installation_id=INSTALLATION,
            ),
        ): ("REFUND_REQUESTED", "REFUND_REQUESTED", "legacy", third),
        publish(
            stack,
            partner_event(NEW_TYPE, [f"businessProduct/{PRODUCT}/novelty/n-1"], event_format="2024-01-01"),
        ): (NEW_TYPE, NEW_TYPE, "2024-01-01", None),
    }

    stats = poller.run_until_idle(timeout=WAIT)

    assert stats.failed == 0 and not stats.errors
    for event_id, (event_type, received_type, event_format, order_id) in sent.items():
        (record,) = event_records(stack, event_id)
        assert record["outcome"] == "processed"
        assert record["event_type"] == event_type
        assert record["received_type"] == received_type
        assert record["event_format"] == event_format
        assert record["installation_id"] == INSTALLATION
        assert record["business_product_id"] == PRODUCT
        if order_id is None:
            assert json.loads(record["raw"])["detail-type"] == event_type  # kept as received
            continue
        (snapshot,) = snapshots(stack, order_id)
        assert snapshot["event_id"] == event_id
        order = json.loads(snapshot["data"])
        assert order["id"] == order_id
        assert order["lineItems"] == without_typename(make_order(order_id)["lineItems"])
    store = stack.client("dynamodb").get_item(
        TableName=stack.aws.table_name(),
        Key={"pk": {"S": INSTALLATION_PREFIX + INSTALLATION}, "sk": {"S": STORE_SK}},
    )["Item"]
    assert store["site_id"]["S"] == make_store(INSTALLATION)["siteId"]
    assert store["widget_id"]["S"] == make_store(INSTALLATION)["widgetId"]


def test_an_event_of_another_source_on_the_same_bus_never_reaches_the_queue(
    stack: LocalStack, poller: SqsPoller
) -> None:
    assert depth(stack, "EventsQueue") == 0
    stack.publish(
        {
            "source": FOREIGN_SOURCE,
            "detail-type": "ORDER_CONFIRMED",  # the same type: only the source tells them apart
            "resources": [resource_path(PRODUCT, order_id="322-2000001-0000009")],
            "detail": {"orderId": "322-2000001-0000009"},
        }
    )
    ours = publish(stack, partner_event("BUYABILITY_CHANGED", [resource_path(PRODUCT, item_id="item-1")]))
    assert depth(stack, "EventsQueue") == 1  # the rule forwarded only the Buy with Prime event
    records = poller.stats.records

    poller.run_until_idle(timeout=WAIT)

    assert poller.stats.records - records == 1
    assert event_records(stack, ours)[0]["outcome"] == "processed"
    assert not [i for i in table_items(stack, "EVENT") if i.get("reason") == "foreign_source"]


def test_a_graphql_outage_beyond_the_retry_budget_brings_the_message_back_and_it_is_processed_once(
    stack: LocalStack, poller: SqsPoller
) -> None:
    order_id = "322-2000001-0000004"
    envelope = partner_event("ORDER_CONFIRMED", [resource_path(PRODUCT, order_id=order_id)])
    calls, failed = graphql_calls(stack), poller.stats.failed
    stack.sandbox.fail_next("graphql", 503, times=4)  # every try of the client's in-process budget
    event_id = publish(stack, envelope)

    assert poller.poll_once(wait_seconds=1) == 1
    assert poller.stats.failed - failed == 1  # reported as a batch item failure: back to the queue
    assert event_records(stack, event_id) == [] and snapshots(stack, order_id) == []
    assert depth(stack, "EventsQueue") == 1

    poller.run_until_idle(timeout=WAIT)  # the fault is spent: the next delivery succeeds

    assert poller.stats.failed - failed == 1
    assert graphql_calls(stack) - calls == 5  # 4 failed tries, then one order query
    (record,) = event_records(stack, event_id)
    assert record["outcome"] == "processed"
    (snapshot,) = snapshots(stack, order_id)
    assert snapshot["event_id"] == event_id and json.loads(snapshot["data"])["id"] == order_id
    assert depth(stack, "EventsDeadLetterQueue") == 0

    stack.publish(envelope)  # EventBridge delivers at least once: the same event again
    poller.run_until_idle(timeout=WAIT)

    assert event_records(stack, event_id) == [record]  # nothing new, nothing overwritten
    assert snapshots(stack, order_id) == [snapshot]
    assert graphql_calls(stack) - calls == 5  # the duplicate never reached the API


def test_a_poison_message_reaches_the_dlq_after_max_receive_count_and_bwpctl_redrives_it(
    stack: LocalStack, poller: SqsPoller, capsys: pytest.CaptureFixture[str]
) -> None:
    max_receive = stack.template["Resources"]["EventsQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    order_id = "322-2000001-0000005"
    calls, failed = graphql_calls(stack), poller.stats.failed
    stack.sandbox.fail_next("graphql", 503, times=10_000)  # until cleared
    event_id = publish(stack, partner_event("ORDER_CONFIRMED", [resource_path(PRODUCT, order_id=order_id)]))

    poller.run_until_idle(timeout=WAIT)  # returns once SQS has moved the message to the DLQ

    assert poller.stats.failed - failed == max_receive
    assert graphql_calls(stack) - calls == 4 * max_receive
    assert depth(stack, "EventsQueue") == 0 and depth(stack, "EventsDeadLetterQueue") == 1
    assert event_records(stack, event_id) == []
    peek = stack.client("sqs").receive_message(
        QueueUrl=stack.aws.queue_url("EventsDeadLetterQueue"), VisibilityTimeout=0
    )["Messages"]
    assert [json.loads(m["Body"])["detail"]["eventId"] for m in peek] == [event_id]

    stack.sandbox.faults.clear()  # the outage ends; the operator redrives
    capsys.readouterr()
    assert run_bwpctl(stack, "redrive") == 0
    assert "redrove 1 message(s)" in capsys.readouterr().out
    assert depth(stack, "EventsDeadLetterQueue") == 0 and depth(stack, "EventsQueue") == 1

    poller.run_until_idle(timeout=WAIT)

    (record,) = event_records(stack, event_id)
    assert record["outcome"] == "processed"
    (snapshot,) = snapshots(stack, order_id)
    assert snapshot["event_id"] == event_id
    assert depth(stack, "EventsQueue") == 0 and depth(stack, "EventsDeadLetterQueue") == 0


def test_an_event_after_an_uninstall_is_unroutable_even_while_the_function_is_warm(
    stack: LocalStack, poller: SqsPoller
) -> None:
    installation = "amzn1.bwp.installation.e2e-flow-uninstalled"
    assert install(stack, installation).status == 200

    def legacy_order(order_id: str) -> str:
        product = "amzn1.bp.product.e2e-flow-uninstalled"
        return publish(
            stack,
            partner_event(
                "ORDER_CONFIRMED",
                [resource_path(product, order_id=order_id)],
                event_format="legacy",
                installation_id=installation,
            ),
        )

    before = legacy_order("322-2000001-0000007")
    poller.run_until_idle(timeout=WAIT)
    assert event_records(stack, before)[0]["outcome"] == "processed"  # the function holds its token now
    assert stack.uninstall(installation).json() == {"status": "uninstalled"}

    after = legacy_order("322-2000001-0000008")
    poller.run_until_idle(timeout=WAIT)

    assert event_records(stack, after)[0]["outcome"] == "unroutable"


def test_an_event_the_queue_lost_is_recovered_from_the_archive_once(stack: LocalStack, poller: SqsPoller) -> None:
    time.sleep(1.1)  # the span below starts at this second: earlier tests' events stay outside it
    since = datetime.now(UTC).replace(microsecond=0)
    order_id = "322-2000001-0000009"
    event_id = publish(stack, partner_event("ORDER_CONFIRMED", [resource_path(PRODUCT, order_id=order_id)]))
    sqs = stack.client("sqs")
    sqs.purge_queue(QueueUrl=stack.aws.queue_url("EventsQueue"))  # lost before the function saw it
    assert depth(stack, "EventsQueue") == 0 and event_records(stack, event_id) == []
    aws = stack.aws
    replay = [
        *("--archive-arn", aws.resources["PartnerEventArchive"].attributes["Arn"]),
        *("--rule-arn", aws.resources["PartnerEventsRule"].attributes["Arn"]),
        *("replay-archive", "--since", since.isoformat(), "--wait"),
    ]
    assert run_bwpctl(stack, *replay) == 0
    poller.run_until_idle(timeout=WAIT)
    (record,) = event_records(stack, event_id)
    assert record["outcome"] == "processed"
    (snapshot,) = snapshots(stack, order_id)
    # the same span again: the event is known by its detail.eventId, nothing of it is written again.
    # (moto replays the whole archive, ignoring the span and FilterArns, with fresh EventBridge IDs:
    # events of formats without detail.eventId come back as new ones. AWS honours span and filter.)
    assert run_bwpctl(stack, *replay) == 0
    poller.run_until_idle(timeout=WAIT)
    assert event_records(stack, event_id) == [record] and snapshots(stack, order_id) == [snapshot]
