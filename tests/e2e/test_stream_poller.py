"""StreamPoller against moto's DynamoDB stream of the template's table, with the outbox publisher's
own event source (its FilterCriteria, batch size, retries, on-failure queue): Lambda's record shape,
filtering, retry from the first failed record, and giving up to the on-failure destination. The
handlers here are test doubles: they exercise the poller (tests/test_app_events.py: the publisher)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.local_stack import LocalAws, start_local_aws
from devtools.local_stack.functions import function_events
from devtools.local_stack.stack import LOCAL_PARAMETERS
from devtools.local_stack.stream_poller import StreamPoller, stream_source_from_properties

pytestmark = pytest.mark.e2e


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    with start_local_aws(parameter_overrides=LOCAL_PARAMETERS) as running:
        yield running


class Recorder:
    """Records each batch; fails the records whose pk is in `fail` (their sequence number), or raises."""

    def __init__(self, fail: set[str] | None = None, crash: bool = False) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail, self.crash = set(fail or ()), crash

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.batches.append(event["Records"])
        if self.crash:
            raise RuntimeError("the function crashed")
        failed = [r for r in event["Records"] if r["dynamodb"]["Keys"]["pk"]["S"] in self.fail]
        self.fail -= {r["dynamodb"]["Keys"]["pk"]["S"] for r in failed}  # each fails once
        return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in failed]}

    def keys(self) -> list[list[str]]:
        return [[r["dynamodb"]["Keys"]["pk"]["S"] for r in batch] for batch in self.batches]


def poller(aws: LocalAws, handler: Recorder, **source_changes: Any) -> StreamPoller:
    (raw,) = function_events(aws.template, "OutboxPublisherFunction", "DynamoDB").values()
    source = dataclasses.replace(stream_source_from_properties(aws.resolve(raw)), **source_changes)
    return StreamPoller(
        aws.client("dynamodbstreams"),
        aws.client("sqs"),
        handler,
        source,
        region=aws.region,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:outbox",
        queue_url_of=aws.queue_url_of,
        retry_delay_seconds=0,
    )


def put(aws: LocalAws, pk: str, sk: str = "INSTALLATION") -> None:
    aws.client("dynamodb").put_item(TableName=aws.table_name(), Item={"pk": {"S": pk}, "sk": {"S": sk}})


def test_records_arrive_in_lambdas_shape_and_the_filters_drop_what_no_pattern_matches(aws: LocalAws) -> None:
    recorder = Recorder()
    stream = poller(aws, recorder)
    put(aws, "INSTALLATION#a")
    put(aws, "INSTALLATION#a", "STORE")  # matches none of the publisher's filters
    stats = stream.run_until_idle(timeout=20)
    assert recorder.keys() == [["INSTALLATION#a"]] and stats.filtered_out == 1
    (record,) = recorder.batches[0]
    assert record["eventName"] == "INSERT" and record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == aws.resources["InstallationsTable"].attributes["StreamArn"]
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["dynamodb"]["NewImage"]["sk"] == {"S": "INSTALLATION"}
    json.dumps(record)  # plain JSON, as Lambda delivers it


def test_a_failed_record_is_retried_with_everything_after_it_in_order(aws: LocalAws) -> None:
    recorder = Recorder(fail={"INSTALLATION#b"})
    stream = poller(aws, recorder)
    for pk in ("INSTALLATION#a", "INSTALLATION#b", "INSTALLATION#c"):
        put(aws, pk)
    stream.run_until_idle(timeout=20)
    assert recorder.keys() == [
        ["INSTALLATION#a", "INSTALLATION#b", "INSTALLATION#c"],
        ["INSTALLATION#b", "INSTALLATION#c"],
    ]
    assert stream.stats.retried == 1 and stream.stats.sent_to_on_failure == 0


def test_after_its_retries_a_batch_goes_to_the_on_failure_queue_and_the_shard_moves_on(aws: LocalAws) -> None:
    recorder = Recorder(crash=True)
    stream = poller(aws, recorder, maximum_retry_attempts=2)
    put(aws, "INSTALLATION#a")
    stream.run_until_idle(timeout=20)
    assert recorder.keys() == [["INSTALLATION#a"]] * 3  # the first attempt and two retries
    sqs = aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=aws.queue_url("OutboxDeadLetterQueue"), MaxNumberOfMessages=10)
    (message,) = messages["Messages"]
    info = json.loads(message["Body"])
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["DDBStreamBatchInfo"]["batchSize"] == 1
    assert info["DDBStreamBatchInfo"]["startSequenceNumber"] == recorder.batches[0][0]["dynamodb"]["SequenceNumber"]
    recorder.crash = False
    put(aws, "INSTALLATION#b")
    stream.run_until_idle(timeout=20)
    assert recorder.keys()[-1] == ["INSTALLATION#b"]
