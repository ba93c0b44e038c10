"""Records sent back to the queue wait longer the more often they were received: an upstream outage
of several hours backs off instead of dead-lettering everything after the queue's fixed visibility
timeout (360 s x 5 receives = 30 minutes).

Delay after the n-th receive: BASE_SECONDS x 2^(n-1), at most SQS's 12 hours, with jitter (50-100 %)
so records sent back together do not all return in the same second. With EventsQueue's
maxReceiveCount of 10 a record is tried for at least 4.3 hours (8.5 without jitter) before it goes to
the dead-letter queue: 60 s, 2, 4, 8, 16, 32, 64, 128, 256 minutes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from shared.observability import count, logger

BASE_SECONDS = 60
MAX_SECONDS = 12 * 3600  # SQS's limit for a visibility timeout
BATCH_LIMIT = 10  # ChangeMessageVisibilityBatch entries per request


def visibility_timeout(receive_count: int, uniform: Callable[[float, float], float] = random.uniform) -> int:
    exponent = min(max(receive_count, 1) - 1, 20)
    return int(min(MAX_SECONDS, BASE_SECONDS * 2**exponent) * uniform(0.5, 1.0))


def delay_retries(sqs: Any, queue_url: str | None, records: Iterable[dict[str, Any]]) -> int:
    """Give each record sent back its own visibility timeout; best effort (a failure here only means
    the queue's default applies). Returns how many were changed."""
    entries: list[dict[str, Any]] = []
    for record in records:
        receive_count = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
        entries.append(
            {
                "Id": str(len(entries)),
                "ReceiptHandle": str(record.get("receiptHandle") or ""),
                "VisibilityTimeout": visibility_timeout(receive_count),
            }
        )
    if not entries or not queue_url:
        return 0
    changed = 0
    for start in range(0, len(entries), BATCH_LIMIT):
        chunk = entries[start : start + BATCH_LIMIT]
        try:
            answer = sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=chunk)
        except Exception as error:  # noqa: BLE001 - the queue's own visibility timeout applies then
            logger.warning("could not delay records sent back", extra={"error": type(error).__name__})
            continue
        changed += len(answer.get("Successful", []))
    count("RetriesDelayed", changed)
    return changed
