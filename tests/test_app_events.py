"""App events for the partner's code (src/outbox/): the table's stream is the outbox, the publisher
puts one event per lifecycle change and per hydration on the app bus, exactly once in effect: a
failed publish is retried from the first unpublished record, and repeats carry the same eventId.

Real engines where there are: moto's DynamoDB stream of the table (as template.yaml declares it),
moto's EventBridge bus with a rule delivering to an SQS queue the test reads."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from devtools.template import PROJECT_ROOT, load_template
from outbox import handler
from outbox.mapping import SOURCE
from sandbox.events import partner_event, resource_path
from tests.app_driver import AppDriver
from tests.conftest import TABLE_NAME
from tests.events_driver import EventsDriver

INSTALLATION = "amzn1.bwp.installation.app-events"
BUS = "test-app-events"


class AppBus:
    """The table's stream read from where the last read stopped, the bus, and what reached it."""

    def __init__(self, dynamodb: Any) -> None:
        view = load_template()["Resources"]["InstallationsTable"]["Properties"]["StreamSpecification"]
        answer = dynamodb.update_table(TableName=TABLE_NAME, StreamSpecification={"StreamEnabled": True, **view})
        # moto 5.2.5 answers the streams API only at its classic host (with botocore's default
        # endpoint resolution it says "Not yet implemented"): name it
        self.streams = boto3.client("dynamodbstreams", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com")
        stream_arn = answer["TableDescription"]["LatestStreamArn"]
        shard = self.streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self.iterator = self.streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name=BUS)
        self.queue = sqs.create_queue(QueueName="app-events-seen")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="everything", EventBusName=BUS, EventPattern=json.dumps({"source": [SOURCE]}))
        events.put_targets(Rule="everything", EventBusName=BUS, Targets=[{"Id": "seen", "Arn": queue_arn}])
        self.sqs = sqs
        self.deps = handler.Dependencies({"APP_EVENT_BUS_NAME": BUS})

    def new_records(self) -> list[dict[str, Any]]:
        answer = self.streams.get_records(ShardIterator=self.iterator)
        self.iterator = answer.get("NextShardIterator") or self.iterator
        return list(answer["Records"])

    def publish(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return handler.handle({"Records": records}, self.deps)

    def seen(self) -> list[dict[str, Any]]:
        found = []
        while messages := self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        return found


@pytest.fixture
def bus(dynamodb: Any) -> AppBus:
    return AppBus(dynamodb)


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [event["detail-type"] for event in events]


def test_every_lifecycle_change_is_one_event_and_none_carries_a_token(app: AppDriver, bus: AppBus) -> None:
    app.install(INSTALLATION)
    item = app.installation_item(INSTALLATION) or {}
    secrets = [item["access_token"]["S"], item["refresh_token"]["S"]]
    app.settings(INSTALLATION)  # reads, maybe a refresh: no event
    app.dynamodb.update_item(  # the token expired and Buy with Prime revoked the refresh token
        TableName=TABLE_NAME,
        Key={"pk": {"S": f"INSTALLATION#{INSTALLATION}"}, "sk": {"S": "INSTALLATION"}},
        UpdateExpression="SET access_token_expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    app.sandbox.revoke_access_tokens(INSTALLATION)
    app.sandbox.revoke_refresh_tokens(INSTALLATION)
    app.settings(INSTALLATION)  # -> needs re-authorisation
    app.install(INSTALLATION)  # the merchant authorises again
    app.uninstall(INSTALLATION)
    assert bus.publish(bus.new_records()) == {"batchItemFailures": []}
    seen = bus.seen()
    assert kinds(seen) == [
        "InstallationCreated",
        "InstallationNeedsReauthorization",
        "InstallationReauthorized",
        "InstallationUninstalled",
    ]
    for event in seen:
        detail = event["detail"]
        assert detail["schemaVersion"] == "1" and detail["installationId"] == INSTALLATION and detail["eventId"]
        assert not any(secret in json.dumps(event) for secret in secrets)
    assert seen[1]["detail"]["reason"] == "invalid_grant"
    assert len({event["detail"]["eventId"] for event in seen}) == 4


def test_hydrated_orders_and_other_partner_events_reach_the_bus_with_their_data(
    events: EventsDriver, bus: AppBus
) -> None:
    events.install(INSTALLATION, "bp-app-events")
    bus.publish(bus.new_records())
    bus.seen()  # the installation's own event
    order = events.order_event("bp-app-events", "322-APP-0000001")
    other = partner_event("SOMETHING_NEW", [resource_path("bp-app-events")])  # nothing to hydrate
    events.handle(order, other)
    assert bus.publish(bus.new_records()) == {"batchItemFailures": []}
    seen = {event["detail-type"]: event["detail"] for event in bus.seen()}
    assert set(seen) == {"OrderHydrated", "PartnerEventReceived"}
    hydrated = seen["OrderHydrated"]
    assert hydrated["installationId"] == INSTALLATION and hydrated["resourceId"] == "322-APP-0000001"
    assert hydrated["data"]["id"] == "322-APP-0000001" and hydrated["version"] > 0
    assert hydrated["sourceEventId"] == order["detail"]["eventId"]
    received = seen["PartnerEventReceived"]
    assert (
        received["eventType"] == "SOMETHING_NEW"
        and received["event"]["detail"]["eventId"] == other["detail"]["eventId"]
    )


class FailingOnce:
    """EventBridge refusing the first entry of the next call (throttled), then fine."""

    def __init__(self, real: Any) -> None:
        self.real, self.failures = real, 1

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException"}] * len(Entries)}
        return dict(self.real.put_events(Entries=Entries))


def test_a_failed_publish_is_retried_from_the_first_unpublished_record_and_nothing_is_lost(
    app: AppDriver, bus: AppBus
) -> None:
    app.install(INSTALLATION)
    app.uninstall(INSTALLATION)
    records = bus.new_records()
    bus.deps._events = FailingOnce(boto3.client("events"))
    answer = bus.publish(records)
    [failure] = answer["batchItemFailures"]
    assert bus.seen() == []  # nothing went out: the write is committed, the publish is not
    # Lambda retries from the named record (a stream is in order): now everything goes out
    retry = records[[r["dynamodb"]["SequenceNumber"] for r in records].index(failure["itemIdentifier"]) :]
    assert bus.publish(retry) == {"batchItemFailures": []}
    assert kinds(bus.seen()) == ["InstallationCreated", "InstallationUninstalled"]


def test_a_redelivered_batch_repeats_the_same_event_ids(app: AppDriver, bus: AppBus) -> None:
    """At least once: the same stream records published twice give the same eventIds to drop."""
    app.install(INSTALLATION)
    records = bus.new_records()
    bus.publish(records)
    bus.publish(records)
    ids = [event["detail"]["eventId"] for event in bus.seen()]
    assert len(ids) == 2 and len(set(ids)) == 1


SCHEMAS = json.loads((PROJECT_ROOT / "docs" / "app-events" / "app-events.schema.json").read_text())["$defs"]


def check_against_schema(event: dict[str, Any]) -> None:
    """The documented schema and what is published agree: the type is documented, every required
    field is there, no undocumented field is (the little of JSON Schema these flat details use)."""
    schema = SCHEMAS[event["detail-type"]]
    detail = event["detail"]
    assert set(schema["required"]) <= set(detail), (event["detail-type"], set(schema["required"]) - set(detail))
    assert set(detail) <= set(schema["properties"]), (event["detail-type"], set(detail) - set(schema["properties"]))


def test_published_events_and_the_samples_match_the_documented_schemas(
    app: AppDriver, events: EventsDriver, bus: AppBus
) -> None:
    app.install(INSTALLATION)
    events.store.put_link("bp-app-events", INSTALLATION, "operator")
    events.handle(events.order_event("bp-app-events", "322-APP-0000009"))
    events.handle(partner_event("SOMETHING_NEW", [resource_path("bp-app-events")]))
    app.uninstall(INSTALLATION)
    bus.publish(bus.new_records())
    seen = bus.seen()
    assert {e["detail-type"] for e in seen} >= {"InstallationCreated", "OrderHydrated", "PartnerEventReceived"}
    samples = [json.loads(p.read_text()) for p in (PROJECT_ROOT / "docs" / "app-events").glob("sample-*.json")]
    for event in seen + samples:
        check_against_schema(event)


def test_a_tenant_purge_and_personal_data_tasks_reach_the_bus_as_their_own_events(
    app: AppDriver, events: EventsDriver, bus: AppBus
) -> None:
    from shared.budget import Deadline
    from shared.store.purge import TenantPurge

    app.install(INSTALLATION)
    events.store.put_link("bp-app-events", INSTALLATION, "operator")
    task = partner_event(
        "PERSONAL_DATA_DELETION_TASK_COMPLETED", [resource_path("bp-app-events") + "/personalDataDeletionTask/t-1"]
    )
    events.handle(task)
    app.uninstall(INSTALLATION)
    assert TenantPurge(app.dynamodb, TABLE_NAME).purge(INSTALLATION, Deadline.after(60)).done
    bus.publish(bus.new_records())
    seen = {event["detail-type"]: event for event in bus.seen()}
    assert {"PersonalDataTask", "InstallationUninstalled", "InstallationPurged"} <= set(seen)
    assert "PartnerEventReceived" not in seen  # the task has its own type
    detail = seen["PersonalDataTask"]["detail"]
    assert (detail["task"], detail["outcome"], detail["installationId"]) == ("deletion", "completed", INSTALLATION)
    assert detail["resources"] == task["resources"]
    assert seen["InstallationPurged"]["detail"]["installationId"] == INSTALLATION
    for event in seen.values():
        check_against_schema(event)
