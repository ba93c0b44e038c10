"""EventBridge rules that invoke functions (SAM `Type: EventBridgeRule`), and a tap on a bus.

moto's EventBridge delivers to SQS targets but cannot invoke a local Python function, so each rule is
created on its bus as the template declares it (same pattern), targeting a local relay queue that an
`SqsPoller` drains into the function. What an asynchronous Lambda invocation does is kept:
- the function gets the event itself (not an SQS record);
- an exception is retried (the relay queue's visibility, then `retry_delay_seconds` locally) up to
  the function's EventInvokeConfig.MaximumRetryAttempts (Lambda's default 2), then the event goes to
  its OnFailure SQS destination in Lambda's destination record shape, and is dropped from the relay.
The rule's own DeadLetterConfig and RetryPolicy cover failures to reach Lambda, which cannot happen
locally.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("devtools.local_stack")

DEFAULT_ASYNC_RETRIES = 2  # Lambda's default MaximumRetryAttempts for asynchronous invocations


@dataclass
class RelayedFunction:
    """Adapts an SqsPoller (batch size 1) to a function invoked asynchronously by a rule."""

    function: Callable[[dict[str, Any], Any], Any]
    function_arn: str
    maximum_retry_attempts: int
    send_to_on_failure: Callable[[str], None] | None  # the destination record, as JSON
    context_factory: Callable[[], Any] = lambda: None
    results: list[Any] = field(default_factory=list)  # what each successful invocation returned
    failures: list[str] = field(default_factory=list)  # repr of each error

    def __call__(self, batch: Mapping[str, Any], _context: Any = None) -> None:
        for record in batch["Records"]:
            event = json.loads(record["body"])
            attempt = int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1))
            try:
                self.results.append(self.function(event, self.context_factory()))
            except Exception as error:
                self.failures.append(repr(error))
                if attempt <= self.maximum_retry_attempts:
                    raise  # the relay message comes back: Lambda's retry
                log.warning("%s failed %d times on event %s: sent on", self.function_arn, attempt, event.get("id"))
                if self.send_to_on_failure is not None:
                    self.send_to_on_failure(json.dumps(destination_record(event, error, self.function_arn, attempt)))


def destination_record(event: Mapping[str, Any], error: Exception, function_arn: str, attempts: int) -> dict[str, Any]:
    """What Lambda sends an asynchronous invocation's OnFailure destination."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
    }


def create_relay(events: Any, sqs: Any, *, bus: str, rule: str, pattern: Mapping[str, Any] | str) -> tuple[str, str]:
    """A rule on `bus` with `pattern` delivering to a new queue named after it: (queue URL, ARN)."""
    url = sqs.create_queue(QueueName=f"{rule}-relay")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    text = pattern if isinstance(pattern, str) else json.dumps(pattern)
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=text, State="ENABLED")
    answer = events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "relay", "Arn": arn}])
    if answer.get("FailedEntryCount"):
        raise RuntimeError(f"{rule}: put_targets failed: {answer['FailedEntries']}")
    return url, arn


@dataclass
class BusTap:
    """Every event a rule on a bus matches, kept (bounded) and handed to `on_event`."""

    on_event: Callable[[dict[str, Any]], None] | None = None
    limit: int = 1000
    seen: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, batch: Mapping[str, Any], _context: Any = None) -> None:
        for record in batch["Records"]:
            event = json.loads(record["body"])
            self.seen.append(event)
            del self.seen[: -self.limit]
            if self.on_event is not None:
                self.on_event(event)
