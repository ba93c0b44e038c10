"""Buy with Prime partner events as EventBridge delivers them, in each documented format.

- "2024-11-01": detail = {idempotencyKey, eventDescriptor, resources, eventId, apiVersion,
  subscriptionId, eventTime, data}
- "2024-01-01": detail = {} (thin)
- "legacy": detail = {eventType, contextKeys: {installationId}} (what the original Lambda read)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

Format = Literal["2024-11-01", "2024-01-01", "legacy"]
SOURCE = "aws.partner/buywithprime/sandbox-events"


def resource_path(business_product_id: str, **ids: str) -> str:
    """`businessProduct/{bp}/order/{orderId}/refund/{refundId}` and the other documented shapes."""
    path = f"businessProduct/{business_product_id}"
    order = ids.get("order_id")
    if "carrier_code" in ids:
        return f"{path}/carrier/{ids['carrier_code']}/tracker/{ids['tracking_number']}"
    if "item_id" in ids:
        return f"{path}/{ids.get('item_segment', 'items')}/{ids['item_id']}"
    if "privacy_task_id" in ids:
        return f"{path}/personalDataDeletionTask/{ids['privacy_task_id']}"
    if order:
        path += f"/order/{order}"
        for name, segment in (("refund_id", "refund"), ("return_id", "return"), ("delivery_id", "delivery")):
            if name in ids:
                path += f"/{segment}/{ids[name]}"
    return path


def partner_event(
    event_type: str,
    resources: list[str],
    *,
    event_format: Format = "2024-11-01",
    installation_id: str | None = None,
    event_id: str | None = None,
    idempotency_key: str | None = None,
    data: dict[str, Any] | None = None,
    source: str = SOURCE,
    account: str | None = "123456789012",
    time: datetime | None = None,
) -> dict[str, Any]:
    """One EventBridge envelope (what arrives as the SQS message body)."""
    when = (time or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    envelope: dict[str, Any] = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": event_type,
        "source": source,
        "time": when,
        "region": "us-east-1",
        "resources": resources,
    }
    if account is not None:
        envelope["account"] = account
    if event_format == "2024-11-01":
        envelope["detail"] = {
            "idempotencyKey": idempotency_key or str(uuid.uuid4()),
            "eventDescriptor": event_type,
            "resources": resources,
            "eventId": event_id or str(uuid.uuid4()),
            "apiVersion": "2024-11-01",
            "subscriptionId": "sandbox-subscription",
            "eventTime": when,
            "data": data or {},
        }
    elif event_format == "2024-01-01":
        envelope["detail"] = {}
        if event_id:
            envelope["id"] = event_id
    else:
        envelope["detail"] = {"eventType": event_type, "contextKeys": {"installationId": installation_id or ""}}
        if event_id:
            envelope["id"] = event_id
    return envelope
