"""Lambda entry point of the events function: an SQS batch of Buy with Prime events.

The pipeline works the whole batch at once (concurrent hydration, one lookup per batch); the
Powertools batch processor then turns its verdicts into a partial batch response, so only the
records that met transient trouble go back to the queue (and, after maxReceiveCount, to the DLQ).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from events.dependencies import Dependencies
from events.pipeline import Message, Result, Verdict
from shared.budget import Deadline
from shared.failures import report_failure
from shared.observability import count, logger, metrics
from shared.wiring import Container

# All records failing is still a partial response: the Errors alarm then means a real crash.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

METRIC_OF = {
    Verdict.PROCESSED: "EventsProcessed",
    Verdict.DUPLICATE: "EventsDuplicate",
    Verdict.UNROUTABLE: "EventsUnroutable",
    Verdict.FAILED: "EventsFailed",
    Verdict.NEEDS_REAUTHORIZATION: "EventsNeedingReauthorization",
    Verdict.RETRY: "EventsRetried",
}


class TransientEventError(RuntimeError):
    """Reported as a batch item failure: SQS delivers the message again later."""


_container = Container(Dependencies)


def dependencies() -> Dependencies:
    return _container.get()


def reset_dependencies(replacement: Dependencies | None = None) -> None:
    """For tests and the local stack: start from fresh collaborators (or given ones)."""
    _container.reset(replacement)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context, dependencies())


def handle(event: dict[str, Any], context: Any, deps: Dependencies) -> dict[str, Any]:
    records = [r for r in event.get("Records") or [] if isinstance(r, dict)]
    messages = [Message(str(r.get("messageId") or ""), str(r.get("body") or "")) for r in records]
    try:
        deadline = Deadline.from_context(context, deps.budget)
        results = {result.message_id: result for result in deps.pipeline.process(messages, deadline)}
    except Exception as error:  # noqa: BLE001 - e.g. the table unreachable: every record goes back to SQS
        logger.exception("batch could not be processed; every record will be retried")
        report_failure(error)
        results = {m.message_id: Result(m.message_id, Verdict.RETRY, reason="batch_error") for m in messages}
    _report(results.values())

    def record_handler(record: SQSRecord) -> str:
        result = results.get(record.message_id)
        if result is None or result.verdict is Verdict.RETRY:
            raise TransientEventError(result.reason if result else "not processed")
        return result.verdict.value

    batch = {**event, "Records": records}  # only well-formed records can be reported on
    response = process_partial_response(
        event=batch, record_handler=record_handler, processor=processor, context=context
    )
    failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
    queue_url = deps.settings.events_queue_url if failed else None
    if queue_url:  # the more often a record came back, the longer it now waits (events/backoff.py)
        from events.backoff import delay_retries

        delay_retries(deps.sqs, queue_url, [r for r in records if r.get("messageId") in failed])
    return dict(response)


def _report(results: Any) -> None:
    for result in results:
        count(METRIC_OF[result.verdict])
        if result.hydration_ms is not None:
            metrics.add_metric(name="HydrationLatency", unit="Milliseconds", value=result.hydration_ms)
        log = logger.info if result.verdict in {Verdict.PROCESSED, Verdict.DUPLICATE} else logger.warning
        log(
            "event " + result.verdict.value,
            extra={
                "event_id": result.event_id,
                "event_type": result.event_type,
                "installation_id": result.installation_id,
                "message_id": result.message_id,
                "reason": result.reason,
            },
        )
