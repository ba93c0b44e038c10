"""Put events back on the queue: the DLQ's messages (redrive) and the events kept for attention
(unroutable, failed, needing re-authorisation). Each message is deleted from where it was only
after the queue accepted it, so an interrupted run loses nothing (at worst it sends twice, which
the pipeline's de-duplication absorbs)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.store.event_records import AttentionItem, EventStore


@dataclass
class Moved:
    moved: int = 0
    skipped: int = 0


def redrive(sqs: Any, dlq_url: str, queue_url: str, *, limit: int = 1000) -> Moved:
    """Move up to `limit` messages from the DLQ back to the events queue."""
    result = Moved()
    while result.moved < limit:
        batch = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=min(10, limit - result.moved),
            WaitTimeSeconds=0,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            break
        entries = [
            {
                "Id": str(index),
                "MessageBody": message["Body"],
                **({"MessageAttributes": message["MessageAttributes"]} if message.get("MessageAttributes") else {}),
            }
            for index, message in enumerate(batch)
        ]
        answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        sent = {int(entry["Id"]) for entry in answer.get("Successful", [])}
        result.skipped += len(batch) - len(sent)
        done = [{"Id": str(i), "ReceiptHandle": batch[i]["ReceiptHandle"]} for i in sorted(sent)]
        if done:
            sqs.delete_message_batch(QueueUrl=dlq_url, Entries=done)
        result.moved += len(done)
        if not done:
            break
    return result


@dataclass(frozen=True)
class AttentionFilter:
    """Which attention items a replay takes; the others are left as they are."""

    installation_id: str | None = None
    event_type: str | None = None
    since: datetime | None = None  # the event time, inclusive
    until: datetime | None = None  # exclusive

    def matches(self, item: AttentionItem) -> bool:
        if self.installation_id and item.installation_id != self.installation_id:
            return False
        if self.event_type and item.event_type != self.event_type:
            return False
        if self.since is None and self.until is None:
            return True
        moment = event_moment(item)
        if moment is None:  # a time span is asked for and this one's time is unknown: not taken
            return False
        return (self.since is None or moment >= self.since) and (self.until is None or moment < self.until)


def event_moment(item: AttentionItem) -> datetime | None:
    """The event time its sort key begins with (ISO 8601, or the epoch second it was recorded)."""
    text = item.event_time
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def select_attention(
    store: EventStore, outcome: str, only: AttentionFilter | None = None, *, limit: int = 100
) -> Iterator[AttentionItem]:
    """Up to `limit` attention items of `outcome` that match `only`, oldest first, read through
    every partition page by page (installation and event type filtered by DynamoDB)."""
    only = only or AttentionFilter()
    items = store.attention_items(outcome, installation_id=only.installation_id, event_type=only.event_type)
    return itertools.islice((item for item in items if only.matches(item)), max(0, limit))


def replay_attention(
    store: EventStore,
    sqs: Any,
    queue_url: str,
    outcome: str,
    *,
    limit: int = 100,
    only: AttentionFilter | None = None,
) -> Moved:
    """Send the kept bodies of `outcome` events (those matching `only`) back to the queue, then drop
    their attention items; items without a body are counted and left."""
    result = Moved()
    for item in select_attention(store, outcome, only, limit=limit):
        if not item.raw:
            result.skipped += 1
            continue
        sqs.send_message(QueueUrl=queue_url, MessageBody=item.raw)
        store.delete_attention(item)
        result.moved += 1
    return result


def start_move_task(sqs: Any, dlq_url: str, queue_url: str) -> str:
    """On AWS: SQS's own redrive (StartMessageMoveTask) from the DLQ to the events queue; its handle.
    SQS moves the messages itself, at its own pace, and keeps their attributes."""
    arns = [
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for url in (dlq_url, queue_url)
    ]
    answer = sqs.start_message_move_task(SourceArn=arns[0], DestinationArn=arns[1])
    return str(answer["TaskHandle"])


def peek(sqs: Any, dlq_url: str, limit: int = 10) -> list[dict[str, Any]]:
    """Up to `limit` DLQ messages, made visible again at once (a peek moves nothing)."""
    messages = sqs.receive_message(
        QueueUrl=dlq_url,
        MaxNumberOfMessages=max(1, min(10, limit)),
        VisibilityTimeout=0,
        WaitTimeSeconds=0,
        MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
    ).get("Messages", [])
    return list(messages)
