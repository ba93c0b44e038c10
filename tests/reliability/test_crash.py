"""Crash: the events function killed with SIGKILL while a batch is in flight loses nothing and
duplicates nothing.

The function runs in its own process (devtools.local_stack.events_runner: the unchanged handler fed
by an SQS poller, like Lambda's event source mapping) against the local stack (moto server
provisioned from template.yaml, the Buy with Prime sandbox). Two kills:

1. mid-hydration: the sandbox holds every GraphQL call 3 s, the runner announced its batch and
   has not answered: nothing is recorded, the batch's messages stay in flight;
2. after the work, before the batch is deleted: the runner answered (events recorded, verdicts
   logged) and is killed in the pause before the poller deletes the messages, as when a Lambda
   finishes but its answer never reaches the event source mapping.

A fresh runner then receives both batches again once the queue's visibility timeout (4 s here,
360 s in the template) has passed. Every event must end processed exactly once: one EVENT#
record with outcome processed and an order snapshot, and exactly one "event processed" verdict in
the three runners' logs together (the redelivered, already-recorded events are duplicates).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from devtools.local_stack import LocalStack
from devtools.local_stack.fast_moto import fast_moto
from sandbox.events import partner_event, resource_path
from shared.models import TokenSet
from shared.store.event_records import EventStore
from shared.store.installations import InstallationStore
from tests.reliability.runners import Runner, RunnerOutput

pytestmark = pytest.mark.slow

VISIBILITY_SECONDS = 4
GRAPHQL_LATENCY = 3.0
INSTALLATIONS = [f"amzn1.bwp.installation.crash-{n}" for n in range(3)]


def _install(stack: LocalStack) -> None:
    dynamodb = stack.client("dynamodb")
    for index, installation_id in enumerate(INSTALLATIONS):
        tokens = TokenSet.model_validate(stack.sandbox.issue_tokens(installation_id))
        InstallationStore(dynamodb, stack.aws.table_name()).save_installation(installation_id, tokens, int(time.time()))
        EventStore(dynamodb, stack.aws.table_name()).put_link(f"bp-crash-{index}", installation_id, "operator")


def _publish(stack: LocalStack) -> tuple[dict[str, tuple[str, str]], int]:
    """30 order events (2024-11-01 and legacy) on the bus, five of them published twice: the
    event ID the pipeline sees -> (installation, order), and how many were published again."""
    published: dict[str, tuple[str, str]] = {}
    again = 0
    for n in range(30):
        index = n % len(INSTALLATIONS)
        order_id = f"322-CRASH-{n // 2:04d}"
        event_format = "legacy" if n % 4 == 3 else "2024-11-01"
        envelope = partner_event(
            "ORDER_CONFIRMED" if n % 2 == 0 else "PACKAGE_DELIVERED",
            [resource_path(f"bp-crash-{index}", order_id=order_id)],
            event_format=event_format,
            installation_id=INSTALLATIONS[index] if event_format == "legacy" else None,
        )
        bus_id = stack.publish(envelope)
        event_id = envelope["detail"]["eventId"] if event_format == "2024-11-01" else bus_id
        published[event_id] = (INSTALLATIONS[index], order_id)
        if event_format == "2024-11-01" and n % 6 == 0:
            stack.publish(envelope)  # the same event again: same detail.eventId, new EventBridge id
            again += 1
    return published, again


def _queue_attributes(stack: LocalStack, queue: str) -> dict[str, int]:
    attributes = stack.client("sqs").get_queue_attributes(QueueUrl=stack.aws.queue_url(queue), AttributeNames=["All"])
    return {
        name: int(value) for name, value in attributes["Attributes"].items() if name.startswith("ApproximateNumber")
    }


def _event_records(stack: LocalStack) -> dict[str, dict[str, Any]]:
    items = stack.client("dynamodb").scan(TableName=stack.aws.table_name(), ConsistentRead=True)["Items"]
    return {  # under EVENT#<id>, or under EVENT_KEY#<key> once processed with an idempotency key
        item["event_id"]["S"]: {k: next(iter(v.values())) for k, v in item.items()}
        for item in items
        if item["sk"]["S"] in ("EVENT", "EVENT_KEY")
    }


def test_a_runner_killed_mid_batch_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    with fast_moto(), LocalStack(events=False, background_polling=False) as stack:
        _install(stack)
        stack.client("sqs").set_queue_attributes(
            QueueUrl=stack.aws.queue_url("EventsQueue"), Attributes={"VisibilityTimeout": str(VISIBILITY_SECONDS)}
        )
        published, republished = _publish(stack)
        messages_sent = _queue_attributes(stack, "EventsQueue")["ApproximateNumberOfMessages"]
        assert messages_sent == len(published) + republished == 35

        runners: list[Runner] = []
        try:
            # 1. killed while hydrating its first batch
            stack.sandbox.latency("graphql", GRAPHQL_LATENCY)
            first = Runner(stack, tmp_path, "killed-mid-hydration", "--max-seconds", "40", "--idle-seconds", "40")
            runners.append(first)
            batch = first.wait_for_step("batch", timeout=30)
            time.sleep(0.8)  # inside the 3 s every GraphQL call is held
            assert [s["step"] for s in first.steps()] == ["started", "batch"], "the batch was not in flight"
            first.kill()
            in_flight = [m["id"] for m in batch["messages"]]
            assert len(in_flight) == 10
            assert _event_records(stack) == {}, "a batch killed mid-hydration recorded something"
            assert _queue_attributes(stack, "EventsQueue")["ApproximateNumberOfMessagesNotVisible"] >= len(in_flight)
            stack.sandbox.latency("graphql", 0)

            # 2. killed after its work, before the poller deleted the batch
            second = Runner(stack, tmp_path, "killed-after-answer", "--pause-after-answer", "60", "--max-seconds", "60")
            runners.append(second)
            answered = second.wait_for_step("answered", timeout=30)
            second.kill()
            assert answered["failed"] == []
            recorded = _event_records(stack)
            assert recorded and all(r["outcome"] == "processed" for r in recorded.values())

            # 3. a fresh runner: both batches come back after the visibility timeout
            third = Runner(stack, tmp_path, "restarted", "--max-seconds", "60", "--idle-seconds", "3")
            runners.append(third)
            assert third.wait(timeout=75) == 0
        finally:
            for runner in runners:
                runner.close()

        output = RunnerOutput()
        per_runner: dict[str, RunnerOutput] = {}
        for runner in runners:
            runner.read_into(output)
            per_runner[runner.stdout_path.name] = alone = RunnerOutput()
            runner.read_into(alone)
        records = _event_records(stack)
        snapshots = {
            (item["pk"]["S"].removeprefix("ORDERS#").rpartition("#")[0], item["resource_id"]["S"])
            for item in stack.client("dynamodb").scan(TableName=stack.aws.table_name(), ConsistentRead=True)["Items"]
            if item.get("kind", {}).get("S") == "ORDER"
        }
        queue, dead_letters = _queue_attributes(stack, "EventsQueue"), _queue_attributes(stack, "EventsDeadLetterQueue")

    processed = Counter(v.event_id for v in output.verdicts if v.verdict == "processed")
    by_message = {v.message_id: v for v in output.verdicts}
    redelivered = {m["id"]: m["receive_count"] for s in output.steps if s["step"] == "batch" for m in s["messages"]}

    # nothing lost: every event recorded as processed, with its order's snapshot
    assert set(records) == set(published)
    assert {r["outcome"] for r in records.values()} == {"processed"}
    assert set(published.values()) <= snapshots
    # nothing twice: exactly one "processed" verdict per event across the three processes
    assert set(processed) == set(published) and set(processed.values()) == {1}, processed
    # the killed mid-hydration runner said nothing; its batch came back and was processed
    assert per_runner["killed-mid-hydration.stdout.jsonl"].verdicts == []
    assert all(redelivered[m] >= 2 for m in in_flight)
    assert all(by_message[m].verdict in {"processed", "duplicate"} for m in in_flight)
    # the batch killed after its work came back as duplicates, nothing was done twice
    again = [v for v in per_runner["restarted.stdout.jsonl"].verdicts if v.message_id in answered["messages"]]
    assert {v.verdict for v in again} == {"duplicate"} and len(again) == len(answered["messages"])
    # republished events were recognised; the queues are empty
    assert sum(1 for v in output.verdicts if v.verdict == "duplicate") == republished + len(answered["messages"])
    assert sum(queue.values()) == 0 and sum(dead_letters.values()) == 0
