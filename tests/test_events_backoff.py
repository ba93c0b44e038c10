"""Records sent back to the queue back off with their receive count (issue 9, case 4): an upstream
outage of hours does not dead-letter, and records sent back together do not return together."""

from __future__ import annotations

from typing import Any

import boto3

from devtools.apigw import LambdaContext
from events import handler
from events.backoff import BASE_SECONDS, MAX_SECONDS, visibility_timeout
from sandbox.events import partner_event, resource_path
from tests.events_driver import EventsDriver

INSTALLATION, BP = "amzn1.bwp.installation.backoff", "amzn1.bp.backoff"


def test_the_wait_doubles_with_each_receive_up_to_sqs_limit() -> None:
    top = [visibility_timeout(n, lambda low, high: high) for n in range(1, 12)]
    assert top[:4] == [BASE_SECONDS, 2 * BASE_SECONDS, 4 * BASE_SECONDS, 8 * BASE_SECONDS]
    assert max(top) == MAX_SECONDS == 43_200
    assert visibility_timeout(1, lambda low, high: low) == BASE_SECONDS // 2  # jitter: 50-100 %
    # the queue's 10 receives then span at least 4.3 hours before the dead-letter queue
    assert sum(visibility_timeout(n, lambda low, high: low) for n in range(1, 10)) >= 4.25 * 3600


def test_records_sent_back_are_hidden_for_their_backoff(events: EventsDriver, monkeypatch: Any) -> None:
    # given a queue whose own visibility timeout would return a record at once, and two received records
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="backoff", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    events.install(INSTALLATION, BP)
    bodies = [partner_event("ORDER_CONFIRMED", [resource_path(BP, order_id=f"322-BACK-{i:06d}")]) for i in range(2)]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=events.body(body))
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {"ApproximateReceiveCount": m["Attributes"]["ApproximateReceiveCount"]},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:backoff",
        }
        for m in received
    ]
    # when Buy with Prime answers 503 to everything, so both go back
    events.sandbox.fail_next("graphql", 503, times=100)
    deps = events.new_lambda()
    deps.settings = deps.settings.model_copy(update={"events_queue_url": url})
    answer = handler.handle({"Records": records}, LambdaContext("EventsFunction"), deps)
    # then both were reported, and neither is visible again right away (their backoff hides them)
    assert len(answer["batchItemFailures"]) == 2
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
