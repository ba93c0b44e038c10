"""Lambda entry point of the outbox publisher (template.yaml: OutboxPublisherFunction): the
table's stream in, app events out (outbox/mapping.py) onto the app event bus.

A batch is published in order, 10 entries per PutEvents call. If an entry fails (or a call does),
the answer names the first unpublished stream record (`batchItemFailures`): Lambda retries from
there, so nothing is skipped; entries of that batch already published go out again on the retry
with the same `eventId`, which consumers de-duplicate. After MaximumRetryAttempts the records go to
the outbox dead-letter queue (template), where an operator sees them.
"""

from __future__ import annotations

import json
from typing import Any

from outbox.dependencies import Dependencies
from outbox.mapping import SOURCE, app_event
from shared.observability import count, logger, metrics
from shared.wiring import Container

PUT_EVENTS_LIMIT = 10


_container = Container(Dependencies)


def dependencies() -> Dependencies:
    return _container.get()


def reset_dependencies(replacement: Dependencies | None = None) -> None:
    """For tests and local invokes: start from fresh collaborators (or given ones)."""
    _container.reset(replacement)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, dependencies())


def handle(event: dict[str, Any], deps: Dependencies) -> dict[str, Any]:
    records = event.get("Records") or []
    pending: list[tuple[str, dict[str, Any]]] = []  # (sequence number, PutEvents entry)
    for record in records:
        sequence = str((record.get("dynamodb") or {}).get("SequenceNumber") or "")
        found = app_event(record)
        if found is not None:
            detail_type, detail = found
            entry = {
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, separators=(",", ":")),
                "EventBusName": deps.bus_name,
            }
            pending.append((sequence, entry))
    for start in range(0, len(pending), PUT_EVENTS_LIMIT):
        chunk = pending[start : start + PUT_EVENTS_LIMIT]
        failed_at = _publish(deps, [entry for _, entry in chunk])
        published = len(chunk) if failed_at is None else failed_at
        for _, entry in chunk[:published]:
            count(f"AppEvent{entry['DetailType']}")
        if failed_at is not None:
            sequence = chunk[failed_at][0]
            logger.warning("app events not all published; retried from the first", extra={"sequence": sequence})
            count("AppEventsRetried")
            return {"batchItemFailures": [{"itemIdentifier": sequence}]}
    return {"batchItemFailures": []}


def _publish(deps: Dependencies, entries: list[dict[str, Any]]) -> int | None:
    """Publish in order; the index of the first entry that was not published, or None."""
    try:
        answer = deps.events.put_events(Entries=entries)
    except Exception as error:  # noqa: BLE001 - the whole call failed: retry from its first entry
        logger.warning("PutEvents failed", extra={"error": type(error).__name__})
        from shared.failures import report_failure

        report_failure(error)
        return 0
    if not answer.get("FailedEntryCount"):
        return None
    results = answer.get("Entries") or []
    return next((i for i, result in enumerate(results) if result.get("ErrorCode")), 0)
