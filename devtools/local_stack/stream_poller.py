"""`StreamPoller`: feeds a handler from a DynamoDB stream the way Lambda's event source mapping does.

- records in Lambda's DynamoDB event shape, in shard order, up to `batch_size` per invocation;
- FilterCriteria applied as Lambda does (a record matching no filter is dropped, never delivered),
  with moto's EventBridge pattern matcher (the same pattern language);
- with ReportBatchItemFailures: the batch is retried from the lowest failed sequence number; an
  exception or a malformed answer retries the whole batch; the shard waits meanwhile (in order);
- after MaximumRetryAttempts retries, Lambda's on-failure record (the batch's shard and sequence
  numbers, not its data) goes to the OnFailure SQS destination and the shard moves on.

Local acceleration, explicit: a failed batch is retried after `retry_delay_seconds` (Lambda: at once,
with back-off); shards are listed once at start (moto gives a table one shard that never splits).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devtools.local_stack.background import BackgroundPolling

log = logging.getLogger("devtools.local_stack")

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class StreamSource:
    """A DynamoDB event source of a function, as the template configures it."""

    stream_arn: str
    starting_position: str = "TRIM_HORIZON"
    batch_size: int = 100
    maximum_retry_attempts: int = -1  # -1: until the record expires, as Lambda
    report_batch_item_failures: bool = False
    on_failure_arn: str | None = None
    filters: tuple[str, ...] = ()
    enabled: bool = True


def stream_source_from_properties(properties: Mapping[str, Any]) -> StreamSource:
    """From a SAM `Type: DynamoDB` event's resolved Properties."""
    filters = ((properties.get("FilterCriteria") or {}).get("Filters")) or []
    destination = ((properties.get("DestinationConfig") or {}).get("OnFailure")) or {}
    return StreamSource(
        stream_arn=str(properties["Stream"]),
        starting_position=str(properties.get("StartingPosition", "TRIM_HORIZON")),
        batch_size=int(properties.get("BatchSize", 100)),
        maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
        report_batch_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
        on_failure_arn=str(destination["Destination"]) if destination.get("Destination") else None,
        filters=tuple(str(f["Pattern"]) for f in filters),
        enabled=str(properties.get("Enabled", True)).lower() != "false",
    )


@dataclass
class StreamStats:
    invocations: int = 0
    delivered: int = 0  # records handed to the function (retries counted again)
    filtered_out: int = 0
    retried: int = 0  # batches retried
    sent_to_on_failure: int = 0  # batches given up on
    errors: list[str] = field(default_factory=list)


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    pending: list[dict[str, Any]] = field(default_factory=list)  # read, matched, not yet processed
    attempts: int = 0
    not_before: float = 0.0


class StreamPoller(BackgroundPolling):
    thread_name = "stream-poller"
    idle_wait = 0.2

    def __init__(
        self,
        streams: Any,
        sqs: Any,
        handler: Handler,
        source: StreamSource,
        *,
        region: str,
        function_arn: str,
        queue_url_of: Callable[[str], str],
        context_factory: Callable[[], Any] = lambda: None,
        retry_delay_seconds: float = 2.0,
    ) -> None:
        from moto.events.models import EventPattern  # what EventBridge and Lambda filters share

        self.streams, self.sqs, self.handler, self.source = streams, sqs, handler, source
        self.region, self.function_arn, self._queue_url_of = region, function_arn, queue_url_of
        self.context_factory = context_factory
        self.retry_delay_seconds = retry_delay_seconds
        self._filters = [EventPattern.load(pattern) for pattern in source.filters]
        self.stats = StreamStats()
        self._shards = self._open_shards()
        super().__init__()

    def _open_shards(self) -> list[_Shard]:
        description = self.streams.describe_stream(StreamArn=self.source.stream_arn)["StreamDescription"]
        shards = []
        for shard in description["Shards"]:
            iterator = self.streams.get_shard_iterator(
                StreamArn=self.source.stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType=self.source.starting_position,
            )["ShardIterator"]
            shards.append(_Shard(shard["ShardId"], iterator))
        return shards

    # --- records -----------------------------------------------------------------------------
    def record(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """One record of Lambda's DynamoDB event (creation time in epoch seconds, as Lambda sends)."""
        record: dict[str, Any] = json.loads(json.dumps(raw, default=_plain))
        record["eventSourceARN"] = self.source.stream_arn
        record.setdefault("awsRegion", self.region)
        return record

    def _matches(self, record: dict[str, Any]) -> bool:
        event: Any = record  # moto types it as its own event message; any JSON object matches
        return not self._filters or any(pattern.matches_event(event) for pattern in self._filters)

    def _read(self, shard: _Shard) -> None:
        if shard.iterator is None:
            return
        answer = self.streams.get_records(ShardIterator=shard.iterator, Limit=self.source.batch_size)
        shard.iterator = answer.get("NextShardIterator")
        records = [self.record(raw) for raw in answer.get("Records", [])]
        matched = [r for r in records if self._matches(r)]
        self.stats.filtered_out += len(records) - len(matched)
        shard.pending = matched

    # --- one batch -----------------------------------------------------------------------------
    def poll_once(self) -> int:
        """One invocation per shard with records (new, or due for a retry); records delivered."""
        delivered = 0
        for shard in self._shards:
            if not shard.pending:
                self._read(shard)
            if not shard.pending or time.monotonic() < shard.not_before:
                continue
            delivered += len(shard.pending)
            self._invoke(shard)
        return delivered

    def _invoke(self, shard: _Shard) -> None:
        batch = shard.pending
        self.stats.invocations += 1
        self.stats.delivered += len(batch)
        first_failed = self._first_failed(batch)
        if first_failed is None:
            shard.pending, shard.attempts = [], 0
            return
        shard.attempts += 1
        limit = self.source.maximum_retry_attempts
        if 0 <= limit < shard.attempts:
            self._give_up(shard, batch[first_failed:])
            shard.pending, shard.attempts = [], 0
            return
        self.stats.retried += 1
        shard.pending = batch[first_failed:]
        shard.not_before = time.monotonic() + self.retry_delay_seconds

    def _first_failed(self, batch: list[dict[str, Any]]) -> int | None:
        """Index to retry from, or None when the whole batch succeeded."""
        try:
            answer = self.handler({"Records": batch}, self.context_factory())
        except Exception as error:  # noqa: BLE001 - a failed invocation: the whole batch again
            log.warning("stream handler failed on a batch of %d: %r", len(batch), error)
            self.stats.errors.append(repr(error))
            return 0
        if not self.source.report_batch_item_failures:
            return None
        failures = (
            (answer.get("batchItemFailures") or []) if isinstance(answer, dict) else [] if answer is None else None
        )
        numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
        failed = []
        for failure in failures if isinstance(failures, list) else [None]:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if identifier not in numbers:
                self.stats.errors.append(f"malformed response: {answer!r}")
                return 0  # Lambda treats it as a failure of the whole batch
            failed.append(numbers.index(identifier))
        return min(failed) if failed else None

    def _give_up(self, shard: _Shard, records: list[dict[str, Any]]) -> None:
        self.stats.sent_to_on_failure += 1
        if self.source.on_failure_arn is None:
            log.warning("dropping %d stream records after %d attempts (no destination)", len(records), shard.attempts)
            return
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        document = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": shard.attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": first.get("ApproximateCreationDateTime"),
                "approximateArrivalOfLastRecord": last.get("ApproximateCreationDateTime"),
                "batchSize": len(records),
                "streamArn": self.source.stream_arn,
            },
        }
        self.sqs.send_message(QueueUrl=self._queue_url_of(self.source.on_failure_arn), MessageBody=json.dumps(document))

    # --- driving -----------------------------------------------------------------------------
    def run_until_idle(self, timeout: float = 30.0) -> StreamStats:
        """Poll until every shard is read to its end and nothing waits for a retry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.poll_once() == 0 and not any(shard.pending for shard in self._shards):
                return self.stats
            time.sleep(0.05)
        raise TimeoutError(f"the stream of {self.function_arn} still has records after {timeout} s")

    def describe(self) -> str:
        return f"the stream {self.source.stream_arn}"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON")
