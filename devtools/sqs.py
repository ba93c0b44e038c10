"""Lambda SQS event-source events, in the shape Lambda delivers them."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:EventsQueue"


def sqs_record(
    body: str | dict[str, Any], *, message_id: str | None = None, receive_count: int = 1, queue_arn: str = QUEUE_ARN
) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "AIDAEVENTBRIDGE",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def sqs_event(*bodies: str | dict[str, Any]) -> dict[str, Any]:
    return {"Records": [sqs_record(body) for body in bodies]}
