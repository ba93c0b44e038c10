"""Parse an SQS message body into a `PartnerEvent`, whatever documented format it has:

- 2024-11-01: `detail` = {eventId, idempotencyKey, eventDescriptor, resources, apiVersion,
  subscriptionId, eventTime, data}
- 2024-01-01: `detail` = {} (thin: the envelope's resources say what changed)
- legacy partner format: `detail.eventType`, `detail.contextKeys.installationId`

`account` may be absent (moto drops it; the schema does not need it).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from events.event_types import canonical
from events.resources import ResourceIds, parse_resources

Format = Literal["2024-11-01", "2024-01-01", "legacy"]
MAX_ID_LENGTH = 512


class MalformedEventError(ValueError):
    """The body is not a Buy with Prime event; `reason` is a short fixed code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class _ContextKeys(BaseModel):
    model_config = ConfigDict(extra="allow")
    installation_id: str | None = Field(default=None, alias="installationId", max_length=MAX_ID_LENGTH)


class _Detail(BaseModel):
    """Every field any documented format puts in `detail`; all optional."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event_id: str | None = Field(default=None, alias="eventId", max_length=MAX_ID_LENGTH)
    idempotency_key: str | None = Field(default=None, alias="idempotencyKey", max_length=MAX_ID_LENGTH)
    event_descriptor: str | None = Field(default=None, validation_alias=AliasChoices("eventDescriptor", "eventType"))
    resources: list[str] | None = None
    api_version: str | None = Field(default=None, alias="apiVersion")
    subscription_id: str | None = Field(default=None, alias="subscriptionId")
    event_time: str | None = Field(default=None, alias="eventTime")
    data: dict[str, Any] | None = None
    context_keys: _ContextKeys | None = Field(default=None, alias="contextKeys")


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    detail_type: str = Field(alias="detail-type", min_length=1, max_length=256)
    source: str = Field(min_length=1)
    account: str | None = None
    time: str | None = None
    region: str | None = None
    resources: list[str] = Field(default_factory=list)
    detail: _Detail = Field(default_factory=_Detail)


class PartnerEvent(BaseModel):
    """One Buy with Prime event, normalised across formats."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    idempotency_key: str | None
    event_type: str  # canonical name
    received_type: str  # as it arrived (may be a deprecated alias)
    format: Format
    source: str
    time: str | None
    installation_id: str | None
    resource_paths: tuple[str, ...]
    ids: ResourceIds
    data: dict[str, Any]

    @property
    def scoped_idempotency_key(self) -> str | None:
        """The idempotency key within its tenant: two installations' events never collide. The scope
        is known from the event alone (no lookup): its installation, else its business product
        (which belongs to one installation)."""
        if not self.idempotency_key:
            return None
        scope = self.installation_id or self.ids.business_product_id or "-"
        return f"{scope}#{self.idempotency_key}"


def parse_event(body: str) -> PartnerEvent:
    """Parse one message body; raise MalformedEventError (never anything else) when it is not one."""
    try:
        document = json.loads(body)
    except (ValueError, TypeError):
        raise MalformedEventError("malformed_json", "the message body is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedEventError("schema_violation", "the message body is not a JSON object")
    try:
        envelope = _Envelope.model_validate(document)
    except ValidationError as error:
        fields = ", ".join(sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()}))[:300]
        raise MalformedEventError("schema_violation", f"invalid fields: {fields}") from None
    if not envelope.source.startswith("aws.partner/buywithprime"):
        raise MalformedEventError("foreign_source", "not a Buy with Prime event source")
    detail = envelope.detail
    received_type = detail.event_descriptor or envelope.detail_type
    paths = tuple(envelope.resources or detail.resources or ())
    ids = parse_resources(list(paths))
    if not ids.order_id and (order_id := _carried_order_id(detail)):
        ids = ids.model_copy(update={"order_id": order_id})
    return PartnerEvent(
        event_id=detail.event_id or envelope.id,
        idempotency_key=detail.idempotency_key,
        event_type=canonical(received_type),
        received_type=received_type,
        format=_format(document.get("detail")),
        source=envelope.source,
        time=detail.event_time or envelope.time,
        installation_id=(detail.context_keys.installation_id if detail.context_keys else None) or None,
        resource_paths=paths,
        ids=ids,
        data=detail.data or {},
    )


def _carried_order_id(detail: _Detail) -> str | None:
    """An order ID the event carries outside `resources`: `detail.orderIdentifier.orderId` (the
    legacy partner format of Amazon's samples) or `detail.data.order.id` / `detail.data.orderId`."""
    extra = detail.model_extra or {}
    data = detail.data or {}
    order = data.get("order")
    for holder, name in ((extra.get("orderIdentifier"), "orderId"), (order, "id"), (data, "orderId")):
        value = holder.get(name) if isinstance(holder, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _format(detail: Any) -> Format:
    if isinstance(detail, dict) and ("eventType" in detail or "contextKeys" in detail):
        return "legacy"
    if isinstance(detail, dict) and detail:
        return "2024-11-01"
    return "2024-01-01"
