"""Drives the events function in-process: builds SQS batches of partner events, sets up
installations with tokens the sandbox really issued, and reads back what was recorded."""

from __future__ import annotations

import json
import time
from typing import Any

from devtools.apigw import LambdaContext
from devtools.atomic_dynamodb import AtomicDynamoDB
from devtools.sqs import sqs_record
from events import handler
from events.dependencies import Dependencies
from sandbox.events import partner_event, resource_path
from sandbox.server import BuyWithPrimeSandbox
from shared.models import TokenSet
from shared.store.event_records import EventStore
from shared.store.installations import InstallationStore


class EventsDriver:
    def __init__(self, environ: dict[str, str], sandbox: BuyWithPrimeSandbox, table: str) -> None:
        self.environ = environ
        self.sandbox = sandbox
        self.table = table
        self.lambda_deps = self.new_lambda()
        self.store = EventStore(AtomicDynamoDB(), table)

    def new_lambda(self) -> Dependencies:
        """A fresh 'Lambda container': its own clients, caches and pipeline."""
        deps = Dependencies(self.environ)
        deps.dynamodb = AtomicDynamoDB()
        return deps

    def install(self, installation_id: str, business_product_id: str | None = None, *, expired: bool = False) -> None:
        pair = self.sandbox.issue_tokens(installation_id)
        tokens = TokenSet.model_validate({**pair, "expires_in": 900})
        InstallationStore(AtomicDynamoDB(), self.table).save_installation(installation_id, tokens, int(time.time()))
        if expired:
            AtomicDynamoDB().update_item(
                TableName=self.table,
                Key={"pk": {"S": f"INSTALLATION#{installation_id}"}, "sk": {"S": "INSTALLATION"}},
                UpdateExpression="SET access_token_expires_at = :e",
                ExpressionAttributeValues={":e": {"N": "1"}},
            )
        if business_product_id:
            self.store.put_link(business_product_id, installation_id, "test")

    @staticmethod
    def order_event(
        business_product_id: str, order_id: str, event_type: str = "ORDER_CONFIRMED", **kw: Any
    ) -> dict[str, Any]:
        return partner_event(event_type, [resource_path(business_product_id, order_id=order_id)], **kw)

    def handle(
        self, *bodies: str | dict[str, Any], deps: Dependencies | None = None
    ) -> tuple[dict[str, Any], list[str]]:
        """Run one batch; returns the response and the batch's message IDs in order."""
        records = [sqs_record(body) for body in bodies]
        answer = handler.handle({"Records": records}, LambdaContext("EventsFunction"), deps or self.lambda_deps)
        return answer, [r["messageId"] for r in records]

    @staticmethod
    def failed_ids(answer: dict[str, Any]) -> list[str]:
        return sorted(item["itemIdentifier"] for item in answer["batchItemFailures"])

    def event_record(self, event_id: str) -> dict[str, Any] | None:
        return find_event_record(AtomicDynamoDB(), self.table, event_id)

    def snapshot(self, installation_id: str, order_id: str) -> dict[str, Any] | None:
        return self.store.order_snapshot(installation_id, order_id)

    def items_with_pk_prefix(self, prefix: str) -> list[dict[str, Any]]:
        items = AtomicDynamoDB().scan(TableName=self.table, ConsistentRead=True)["Items"]
        return [i for i in items if i["pk"]["S"].startswith(prefix)]

    @staticmethod
    def body(envelope: dict[str, Any]) -> str:
        return json.dumps(envelope)


def find_event_record(client: Any, table: str, event_id: str) -> dict[str, Any] | None:
    """The record of `event_id` wherever it is (under its ID, or under its idempotency key once
    processed): a test reads what the pipeline wrote without knowing the event's key."""
    records, start = [], None
    while True:
        page = client.scan(TableName=table, ConsistentRead=True, **({"ExclusiveStartKey": start} if start else {}))
        for item in page["Items"]:
            if item["sk"]["S"] in ("EVENT", "EVENT_KEY") and item.get("event_id", {}).get("S") == event_id:
                records.append({k: next(iter(v.values())) for k, v in item.items()})
        if not (start := page.get("LastEvaluatedKey")):
            break
    assert len(records) <= 1, f"{len(records)} records of event {event_id}"
    return records[0] if records else None
