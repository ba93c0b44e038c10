"""SqsPoller against moto with the fixture template's queue (maxReceiveCount 3, visibility 30 s):
Lambda's record shape, batch sizes, partial batch responses, redelivery, the DLQ, whole-batch
failures. The handlers here are test doubles for the events function: they exercise the poller."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.local_stack import LocalAws, SqsPoller, SqsSource, start_local_aws
from tests.e2e.conftest import FIXTURE_TEMPLATE

pytestmark = pytest.mark.e2e


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    """A fresh moto per test (SQS allows one purge a minute, so no sharing and purging)."""
    with start_local_aws(FIXTURE_TEMPLATE) as running:
        yield running


@pytest.fixture
def sqs(aws: LocalAws) -> Any:
    return aws.client("sqs")


class Recorder:
    """Records every event; fails the messages whose body is in `fail` (or raises)."""

    def __init__(self, fail: set[str] | None = None, answer: Any = None, raise_first: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = fail or set()
        self.answer = answer
        self.raise_first = raise_first

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        if len(self.events) <= self.raise_first:
            raise RuntimeError("the function crashed")
        if self.answer is not None:
            return self.answer
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] in self.fail]
        return {"batchItemFailures": failures}

    def bodies(self) -> list[str]:
        return [r["body"] for e in self.events for r in e["Records"]]

    def receive_counts(self, body: str) -> list[str]:
        return [
            r["attributes"]["ApproximateReceiveCount"] for e in self.events for r in e["Records"] if r["body"] == body
        ]


def poller(aws: LocalAws, handler: Any, *, batch_size: int = 4, report: bool = True, **kw: Any) -> SqsPoller:
    source = SqsSource(aws.queue_arn("Work"), batch_size=batch_size, report_batch_item_failures=report)
    options: dict[str, Any] = {"retry_delay_seconds": 0, **kw}
    return SqsPoller(aws.client("sqs"), aws.queue_url("Work"), handler, source, region=aws.region, **options)


def send(sqs: Any, aws: LocalAws, *bodies: str, attributes: dict[str, Any] | None = None) -> None:
    for body in bodies:
        sqs.send_message(QueueUrl=aws.queue_url("Work"), MessageBody=body, MessageAttributes=attributes or {})


def dead_letters(sqs: Any, aws: LocalAws) -> list[str]:
    answer = sqs.receive_message(QueueUrl=aws.queue_url("DeadLetters"), MaxNumberOfMessages=10)
    return [m["Body"] for m in answer.get("Messages", [])]


def test_records_have_lambdas_sqs_shape(aws: LocalAws, sqs: Any) -> None:
    attributes = {
        "kind": {"DataType": "String", "StringValue": "order"},
        "n": {"DataType": "Number", "StringValue": "7"},
    }
    send(sqs, aws, '{"hello": "world"}', attributes=attributes)
    recorder = Recorder()
    poller(aws, recorder).run_until_idle(timeout=10)
    (event,) = recorder.events
    (record,) = event["Records"]
    assert set(record) >= {
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
        "eventSource", "eventSourceARN", "awsRegion",
    }  # fmt: skip
    assert record["body"] == '{"hello": "world"}'
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode(), usedforsecurity=False).hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == aws.queue_arn("Work")
    assert record["awsRegion"] == aws.region
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "order",
        "binaryValue": None,
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert "md5OfMessageAttributes" in record


def test_batches_never_exceed_the_batch_size_and_everything_is_deleted(aws: LocalAws, sqs: Any) -> None:
    bodies = [f"m{i}" for i in range(10)]
    send(sqs, aws, *bodies)
    recorder = Recorder()
    stats = poller(aws, recorder, batch_size=4).run_until_idle(timeout=20)
    assert max(stats.batch_sizes) <= 4
    assert sum(stats.batch_sizes) == 10
    assert sorted(recorder.bodies()) == sorted(bodies)
    assert stats.deleted == 10
    assert all(len(e["Records"]) <= 4 for e in recorder.events)


def test_reported_failures_come_back_and_the_rest_is_deleted(aws: LocalAws, sqs: Any) -> None:
    send(sqs, aws, "ok-1", "flaky", "ok-2")
    recorder = Recorder(fail={"flaky"})
    run = poller(aws, recorder, batch_size=10)
    run.poll_once(wait_seconds=1)
    assert sorted(recorder.bodies()) == ["flaky", "ok-1", "ok-2"]
    recorder.fail.clear()  # the next delivery succeeds
    run.run_until_idle(timeout=10)
    assert recorder.bodies()[3:] == ["flaky"]  # only the reported message was delivered again
    assert recorder.receive_counts("flaky") == ["1", "2"]
    assert run.stats.deleted == 3
    assert dead_letters(sqs, aws) == []


def test_a_message_failing_every_time_reaches_the_dlq_after_max_receive_count(aws: LocalAws, sqs: Any) -> None:
    send(sqs, aws, "poison", "fine")
    recorder = Recorder(fail={"poison"})
    poller(aws, recorder).run_until_idle(timeout=20)
    assert recorder.receive_counts("poison") == ["1", "2", "3"]  # the template's maxReceiveCount
    assert recorder.receive_counts("fine") == ["1"]
    assert dead_letters(sqs, aws) == ["poison"]


@pytest.mark.parametrize(
    "answer",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"wrongKey": "x"}]},
        {"batchItemFailures": "all"},
        ["not", "an", "object"],
    ],
)
def test_a_malformed_partial_response_fails_the_whole_batch(aws: LocalAws, sqs: Any, answer: Any) -> None:
    send(sqs, aws, "a", "b")
    recorder = Recorder(answer=answer)
    run = poller(aws, recorder, batch_size=10)
    run.poll_once(wait_seconds=1)
    assert run.stats.deleted == 0
    assert run.stats.errors and "malformed" in run.stats.errors[0]
    assert run.queue_depth() == 2


def test_an_exception_deletes_nothing_and_the_batch_is_retried(aws: LocalAws, sqs: Any) -> None:
    send(sqs, aws, "x", "y")
    recorder = Recorder(raise_first=1)
    run = poller(aws, recorder, batch_size=10)
    run.run_until_idle(timeout=10)
    assert sorted(recorder.bodies()) == ["x", "x", "y", "y"]
    assert recorder.receive_counts("x") == ["1", "2"]
    assert run.stats.errors == ["RuntimeError('the function crashed')"]
    assert run.stats.deleted == 2


def test_without_report_batch_item_failures_the_answer_is_ignored(aws: LocalAws, sqs: Any) -> None:
    send(sqs, aws, "p", "q")
    recorder = Recorder(fail={"p"})
    run = poller(aws, recorder, batch_size=10, report=False)
    run.run_until_idle(timeout=10)
    assert run.stats.deleted == 2
    assert recorder.receive_counts("p") == ["1"]


def test_without_acceleration_a_failure_waits_for_the_visibility_timeout(aws: LocalAws, sqs: Any) -> None:
    send(sqs, aws, "slow")
    recorder = Recorder(fail={"slow"})
    run = poller(aws, recorder, retry_delay_seconds=None)
    with pytest.raises(TimeoutError):
        run.run_until_idle(timeout=1.5)
    assert recorder.receive_counts("slow") == ["1"]  # invisible for the queue's 30 s
    assert run.queue_depth() == 1


def test_the_batching_window_gathers_messages_sent_meanwhile(aws: LocalAws, sqs: Any) -> None:
    source = SqsSource(aws.queue_arn("Work"), batch_size=10, batching_window=1.5, report_batch_item_failures=True)
    recorder = Recorder()
    run = SqsPoller(aws.client("sqs"), aws.queue_url("Work"), recorder, source, region=aws.region)
    send(sqs, aws, "early")
    later = threading.Timer(0.5, send, args=(sqs, aws, "late"))
    later.start()
    try:
        assert run.poll_once(wait_seconds=1) == 2
    finally:
        later.join(5)
    assert [sorted(r["body"] for r in e["Records"]) for e in recorder.events] == [["early", "late"]]


def test_background_mode_processes_and_stops(aws: LocalAws, sqs: Any) -> None:
    recorder = Recorder()
    run = poller(aws, recorder)
    run.start()
    try:
        send(sqs, aws, *(json.dumps({"n": i}) for i in range(5)))
        deadline = time.monotonic() + 15
        while len(recorder.bodies()) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        run.stop(timeout=10)
    assert len(recorder.bodies()) == 5
    assert run._thread is None
    assert run.queue_depth() == 0
