"""`SqsPoller`: feeds a handler from an SQS queue the way Lambda's event source mapping does.

- batches of up to `batch_size` messages, gathered for at most `batching_window` seconds;
- records in Lambda's SQS event shape;
- with ReportBatchItemFailures: the messages named in `batchItemFailures` stay on the queue, the
  others are deleted; an exception or a malformed answer deletes nothing;
- without it: an exception deletes nothing, any answer deletes the whole batch;
- messages left on the queue come back after the queue's visibility timeout and, after the
  RedrivePolicy's maxReceiveCount receives, SQS (moto too) moves them to the dead-letter queue.

The one local acceleration, explicit: `retry_delay_seconds` (None = Lambda's behaviour, wait for
the visibility timeout) makes failed messages visible again after that many seconds.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devtools.local_stack.background import BackgroundPolling

log = logging.getLogger("devtools.local_stack")

Handler = Callable[[dict[str, Any], Any], Any]
MAX_RECEIVE = 10  # SQS ReceiveMessage's limit per call


@dataclass(frozen=True)
class SqsSource:
    """An SQS event source of a function, as the template configures it."""

    queue_arn: str
    batch_size: int = 10
    batching_window: float = 0.0
    report_batch_item_failures: bool = False
    enabled: bool = True


def sqs_source_from_properties(properties: Mapping[str, Any]) -> SqsSource:
    """From a SAM `Type: SQS` event's resolved Properties (FilterCriteria is not emulated)."""
    if properties.get("FilterCriteria"):
        raise ValueError("the SQS event source has FilterCriteria, which the local poller does not emulate")
    return SqsSource(
        queue_arn=str(properties["Queue"]),
        batch_size=int(properties.get("BatchSize", 10)),
        batching_window=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
        report_batch_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
        enabled=str(properties.get("Enabled", True)).lower() != "false",
    )


@dataclass
class PollStats:
    batches: int = 0
    records: int = 0
    deleted: int = 0
    failed: int = 0  # record failures (left on the queue)
    batch_sizes: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class SqsPoller(BackgroundPolling):
    thread_name = "sqs-poller"
    idle_wait = 0.05

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        source: SqsSource,
        *,
        region: str,
        context_factory: Callable[[], Any] = lambda: None,
        retry_delay_seconds: int | None = None,
        receive_wait_seconds: int = 1,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.source = source
        self.region = region
        self.context_factory = context_factory
        self.retry_delay_seconds = retry_delay_seconds
        self.receive_wait_seconds = receive_wait_seconds
        self.stats = PollStats()
        super().__init__()

    # --- one batch -------------------------------------------------------------------------------
    def _receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        """Up to batch_size messages: keep receiving until full or the batching window closes."""
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.source.batching_window
        while len(messages) < self.source.batch_size:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(MAX_RECEIVE, self.source.batch_size - len(messages)),
                WaitTimeSeconds=wait_seconds if not messages else 0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = answer.get("Messages", [])
            messages.extend(received)
            if time.monotonic() >= deadline or (not received and not messages):
                break
            if not received:
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return messages

    def record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """One record of Lambda's SQS event."""
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": {
                name: _message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.source.queue_arn,
            "awsRegion": self.region,
        }
        if message.get("MD5OfMessageAttributes"):
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record

    def poll_once(self, wait_seconds: int | None = None) -> int:
        """Receive one batch, invoke the handler once, settle the messages; the batch's size."""
        messages = self._receive(self.receive_wait_seconds if wait_seconds is None else wait_seconds)
        if not messages:
            return 0
        self.stats.batches += 1
        self.stats.records += len(messages)
        self.stats.batch_sizes.append(len(messages))
        failed_ids = self._invoke({"Records": [self.record(m) for m in messages]}, messages)
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        failed = [m for m in messages if m["MessageId"] in failed_ids]
        self._delete(done)
        self._retry_later(failed)
        self.stats.failed += len(failed)
        return len(messages)

    def _invoke(self, event: dict[str, Any], messages: list[dict[str, Any]]) -> set[str]:
        """IDs of the messages that failed (all of them when the batch failed as a whole)."""
        every = {m["MessageId"] for m in messages}
        try:
            answer = self.handler(event, self.context_factory())
        except Exception as error:  # noqa: BLE001 - a failed invocation: the whole batch returns
            log.warning("handler failed on a batch of %d: %r", len(messages), error)
            self.stats.errors.append(repr(error))
            return every
        if not self.source.report_batch_item_failures:
            return set()
        failures = _batch_item_failures(answer, every)
        if failures is None:
            log.warning("malformed partial batch response %r: the whole batch returns", answer)
            self.stats.errors.append(f"malformed response: {answer!r}")
            return every
        return failures

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), MAX_RECEIVE):
            chunk = messages[start : start + MAX_RECEIVE]
            answer = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            if answer.get("Failed"):
                raise RuntimeError(f"SQS did not delete {answer['Failed']}")
            self.stats.deleted += len(chunk)

    def _retry_later(self, messages: list[dict[str, Any]]) -> None:
        if self.retry_delay_seconds is None or not messages:
            return
        for start in range(0, len(messages), MAX_RECEIVE):
            chunk = messages[start : start + MAX_RECEIVE]
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.retry_delay_seconds}
                    for i, m in enumerate(chunk)
                ],
            )

    # --- driving -----------------------------------------------------------------------------
    def queue_depth(self) -> int:
        """Messages visible, in flight or delayed."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def run_until_idle(self, timeout: float = 30.0) -> PollStats:
        """Poll until the queue is empty (nothing visible, in flight or delayed); TimeoutError if
        it is not within `timeout` seconds (e.g. failures waiting out a long visibility timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.poll_once(wait_seconds=0) == 0:
                if self.queue_depth() == 0:
                    return self.stats
                time.sleep(0.1)
        raise TimeoutError(f"{self.queue_url} still holds {self.queue_depth()} messages after {timeout} s")

    def describe(self) -> str:
        return self.queue_url


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    binary = value.get("BinaryValue")
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": base64.b64encode(binary).decode("ascii") if isinstance(binary, bytes) else binary,
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": list(value.get("BinaryListValues", [])),
        "dataType": value["DataType"],
    }


def _batch_item_failures(answer: Any, batch_ids: set[str]) -> set[str] | None:
    """The failed IDs of a partial batch response, or None when Lambda would call it malformed.

    Success: None, {}, or batchItemFailures null/empty. Malformed: not an object, a failure that is
    not an object or whose itemIdentifier is missing, empty, null or not a message of this batch.
    """
    if answer is None:
        return set()
    if not isinstance(answer, dict):
        return None
    failures = answer.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    ids: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            return None
        ids.add(identifier)
    return ids
