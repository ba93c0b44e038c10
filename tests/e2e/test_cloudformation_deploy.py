"""template.yaml deployed by the real `sam build` + `sam deploy` onto a real CloudFormation engine:
LocalStack community on 127.0.0.1 (tests/e2e/localstack_engine.py, `make localstack`), with fake
credentials. What the ENGINE created is read back with boto3 and checked; one Buy with Prime
event and one foreign event are routed through the created bus and rule; the stack is updated (a
parameter change) and deleted with `sam delete` (the table is retained).

Three stacks: the default configuration (deleted at the end), the partner bus (EventBusMode=create,
then updated by a parameter change) and an existing bus (EventBusMode=existing). The tests of this
module run in order and share the LocalStack.
What LocalStack cannot prove offline: README, "A real CloudFormation deploy".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devtools.template import PROJECT_ROOT
from tests.e2e.localstack_engine import LOCALSTACK_PYTHON, LocalStack

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not LOCALSTACK_PYTHON.exists(), reason="no .venv-localstack: run `make localstack`"),
]

SAM = PROJECT_ROOT / ".venv-sam" / "bin" / "sam"
STACK = "bwp-e2e"
PARTNER_STACK = "bwp-e2e-partner"
EXISTING_STACK = "bwp-e2e-existing"
PARTNER_SOURCE = "aws.partner/buywithprime/e2e-app-events"
EXISTING_SOURCE = "aws.partner/buywithprime/e2e-existing-events"
BUCKET = "bwp-e2e-artifacts"
PARTNER_PARAMETERS = {"EventBusMode": "create", "PartnerEventSourceName": PARTNER_SOURCE}
SAM_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalStack]:
    # A folder of its own, not pytest's basetemp: pytest deletes old basetemps of other runs.
    root = Path(tempfile.mkdtemp(prefix="bwp-localstack-"))
    try:
        with LocalStack(root) as running:
            running.client("s3").create_bucket(Bucket=BUCKET)
            yield running
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def built_template() -> Iterator[Path]:
    """`sam build` as `make build` runs it (src/Makefile per function), into a temporary folder."""
    root = Path(tempfile.mkdtemp(prefix="bwp-sam-build-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PATH=f"{PROJECT_ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}", SAM_CLI_TELEMETRY="0")
    _run(
        [str(SAM), "build", "--build-dir", str(root / "build"), "--cache-dir", str(root / "cache"), "--parallel"],
        env,
    )
    try:
        yield root / "build" / "template.yaml"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(command: list[str], env: dict[str, str]) -> str:
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=SAM_TIMEOUT_S, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command[:2])} failed ({done.returncode}):\n{output[-6000:]}"
    print(f"sam {command[1]}: {time.monotonic() - started:.1f} s")
    return output


def _deploy(engine: LocalStack, template: Path, stack: str, **parameters: str) -> None:
    command = [
        str(SAM), "deploy", "--template-file", str(template), "--stack-name", stack, "--s3-bucket", BUCKET,
        "--capabilities", "CAPABILITY_IAM", "--no-confirm-changeset", "--no-progressbar", "--region", "us-east-1",
    ]  # fmt: skip
    if parameters:
        command += ["--parameter-overrides", *(f"{k}={v}" for k, v in parameters.items())]
    _run(command, engine.client_environment())


def _resources(engine: LocalStack, stack: str) -> dict[str, str]:
    answer = engine.client("cloudformation").describe_stack_resources(StackName=stack)["StackResources"]
    statuses = {r["LogicalResourceId"]: r["ResourceStatus"] for r in answer}
    assert all(s in {"CREATE_COMPLETE", "UPDATE_COMPLETE"} for s in statuses.values()), statuses
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in answer}


def _queue_arn(engine: LocalStack, url: str) -> str:
    attributes = engine.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def _statements(engine: LocalStack, role: str) -> dict[str, dict[str, Any]]:
    iam = engine.client("iam")
    found: dict[str, dict[str, Any]] = {}
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        for index, statement in enumerate(document["Statement"]):
            found[statement.get("Sid") or f"{name}#{index}"] = statement
    return found


# ------------------------------------------------------------------ the default configuration


@pytest.fixture(scope="module")
def default_stack(engine: LocalStack, built_template: Path) -> dict[str, str]:
    _deploy(engine, built_template, STACK)
    return _resources(engine, STACK)


def test_default_deploy_creates_the_table_with_its_keys_indexes_ttl_and_stream(
    engine: LocalStack, default_stack: dict[str, str]
) -> None:
    dynamodb = engine.client("dynamodb")
    table = dynamodb.describe_table(TableName=default_stack["InstallationsTable"])["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"TokenSweep", "TenantItems"}
    assert indexes["TokenSweep"]["KeySchema"] == [
        {"AttributeName": "sweep_shard", "KeyType": "HASH"},
        {"AttributeName": "refreshed_hour", "KeyType": "RANGE"},
    ]
    assert indexes["TenantItems"]["KeySchema"] == [{"AttributeName": "tenant", "KeyType": "HASH"}]
    assert all(index["Projection"]["ProjectionType"] == "KEYS_ONLY" for index in indexes.values())
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    ttl = dynamodb.describe_time_to_live(TableName=default_stack["InstallationsTable"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_default_deploy_creates_the_queues_the_redrive_and_the_event_source_mappings(
    engine: LocalStack, default_stack: dict[str, str]
) -> None:
    sqs = engine.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=default_stack["EventsQueue"], AttributeNames=["All"])["Attributes"]
    dead_letter_arn = _queue_arn(engine, default_stack["EventsDeadLetterQueue"])
    assert json.loads(queue["RedrivePolicy"]) == {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": 10}
    assert queue["VisibilityTimeout"] == "360"
    assert queue["MessageRetentionPeriod"] == "345600"
    dead_letter = sqs.get_queue_attributes(QueueUrl=default_stack["EventsDeadLetterQueue"], AttributeNames=["All"])
    assert dead_letter["Attributes"]["MessageRetentionPeriod"] == "1209600"

    lambda_ = engine.client("lambda")
    mappings = {
        m["FunctionArn"].rsplit(":", 1)[-1]: m for m in lambda_.list_event_source_mappings()["EventSourceMappings"]
    }
    events = mappings[default_stack["EventsFunction"]]
    assert events["EventSourceArn"] == queue["QueueArn"]
    assert events["BatchSize"] == 10
    assert events["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert events["ScalingConfig"] == {"MaximumConcurrency": 5}
    stream_arn = engine.client("dynamodb").describe_table(TableName=default_stack["InstallationsTable"])["Table"][
        "LatestStreamArn"
    ]
    assert mappings[default_stack["OutboxPublisherFunction"]]["EventSourceArn"] == stream_arn
    for logical_id in ("OAuthFunction", "EventsFunction", "SweepFunction", "TokenBrokerFunction"):
        configuration = lambda_.get_function(FunctionName=default_stack[logical_id])["Configuration"]
        assert configuration["State"] == "Active", logical_id
        assert configuration["Runtime"] == "python3.13"
        assert configuration["Architectures"] == ["arm64"]
        assert configuration["Environment"]["Variables"]["TABLE_NAME"] == default_stack["InstallationsTable"]


def test_default_deploy_resolves_alarm_dimensions_and_actions_to_created_resources(
    engine: LocalStack, default_stack: dict[str, str]
) -> None:
    topic_arn = default_stack["AlarmTopic"]
    assert topic_arn.startswith("arn:aws:sns:us-east-1:")
    queue_names = {
        default_stack[q].rsplit("/", 1)[-1] for q in ("EventsQueue", "EventsDeadLetterQueue", "OutboxDeadLetterQueue")
    }
    function_names = {
        default_stack[f]
        for f in ("OAuthFunction", "EventsFunction", "SweepFunction", "TokenBrokerFunction", "OutboxPublisherFunction")
    }
    created = {
        "QueueName": queue_names,
        "FunctionName": function_names,
        "TableName": {default_stack["InstallationsTable"]},
        "ApiId": {default_stack["HttpApi"]},
    }
    alarms = engine.client("cloudwatch").describe_alarms(MaxRecords=100)["MetricAlarms"]
    ours = [a for a in alarms if a["AlarmName"].startswith(f"{STACK}-")]
    assert len(ours) == sum(1 for logical_id in default_stack if logical_id.endswith("Alarm"))
    seen: dict[str, set[str]] = {}
    for alarm in ours:
        assert alarm["AlarmActions"] == [topic_arn], alarm["AlarmName"]
        dimensions = list(alarm.get("Dimensions", []))
        for metric in alarm.get("Metrics", []):
            dimensions += metric.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])
        for dimension in dimensions:
            if dimension["Name"] in created:
                assert dimension["Value"] in created[dimension["Name"]], (alarm["AlarmName"], dimension)
                seen.setdefault(dimension["Name"], set()).add(dimension["Value"])
    # every function, queue and the table is watched by at least one alarm
    assert seen["FunctionName"] == function_names
    assert seen["QueueName"] == queue_names
    assert seen["TableName"] == {default_stack["InstallationsTable"]}


def test_default_deploy_resolves_role_statements_to_created_arns(
    engine: LocalStack, default_stack: dict[str, str]
) -> None:
    table_arn = engine.client("dynamodb").describe_table(TableName=default_stack["InstallationsTable"])["Table"]
    events_queue_arn = _queue_arn(engine, default_stack["EventsQueue"])
    events = _statements(engine, default_stack["EventsFunctionRole"])
    assert events["InstallationsTableItemAccess"]["Resource"] == table_arn["TableArn"]
    assert events["DelayRecordsSentBack"]["Resource"] == events_queue_arn
    assert events["NoQueueButEventsQueue"]["Effect"] == "Deny"
    assert events["NoQueueButEventsQueue"]["NotResource"] == events_queue_arn
    assert events["EventsFunctionRolePolicy0#0"]["Resource"] == default_stack["ClientCredentialsSecret"]
    sweep = _statements(engine, default_stack["SweepFunctionRole"])
    assert sweep["SweepIndexOnly"]["Resource"] == f"{table_arn['TableArn']}/index/TokenSweep"
    assert sorted(sweep["TenantPurge"]["Resource"]) == [
        table_arn["TableArn"],
        f"{table_arn['TableArn']}/index/TenantItems",
    ]
    outbox = _statements(engine, default_stack["OutboxPublisherFunctionRole"])
    assert outbox["NoStreamButTheTables"]["NotResource"] == table_arn["LatestStreamArn"]
    app_bus = engine.client("events").describe_event_bus(Name=default_stack["AppEventBus"])
    assert outbox["PublishAppEvents"]["Resource"] == app_bus["Arn"]
    # no statement is left with an unresolved reference or a logical ID
    for role in ("OAuthFunctionRole", "EventsFunctionRole", "SweepFunctionRole", "TokenBrokerFunctionRole"):
        for statement in _statements(engine, default_stack[role]).values():
            text = json.dumps(statement.get("Resource", statement.get("NotResource")))
            assert "${" not in text and "Fn::" not in text and '"Ref"' not in text, (role, statement)
    # the default configuration has no partner bus, rule or archive
    assert not {"PartnerEventBus", "PartnerEventsRule", "PartnerEventArchive"} & set(default_stack)


# ------------------------------------------------------------------ the partner bus, then an update


@pytest.fixture(scope="module")
def partner_stack(engine: LocalStack, built_template: Path) -> dict[str, str]:
    """A second stack: EventBusMode=create with a partner event source."""
    _deploy(engine, built_template, PARTNER_STACK, **PARTNER_PARAMETERS)
    return _resources(engine, PARTNER_STACK)


def test_partner_bus_configuration_creates_the_bus_its_rule_and_archive(
    engine: LocalStack, partner_stack: dict[str, str]
) -> None:
    events = engine.client("events")
    bus = events.describe_event_bus(Name=PARTNER_SOURCE)
    assert bus["Name"] == PARTNER_SOURCE
    assert partner_stack["PartnerEventBus"] in {PARTNER_SOURCE, bus["Arn"]}
    rule = events.describe_rule(Name=f"{PARTNER_STACK}-partner-events", EventBusName=PARTNER_SOURCE)
    assert rule["State"] == "ENABLED"
    assert json.loads(rule["EventPattern"]) == {"source": [{"prefix": "aws.partner/buywithprime/"}]}
    (target,) = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=PARTNER_SOURCE)["Targets"]
    assert target["Arn"] == _queue_arn(engine, partner_stack["EventsQueue"])
    assert target["DeadLetterConfig"] == {"Arn": _queue_arn(engine, partner_stack["EventsDeadLetterQueue"])}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    # AWS::Events::Archive: LocalStack community has no resource provider for it (a no-op, like the
    # HTTP API): only its place in the stack is checked here (README, "A real CloudFormation deploy").
    assert "PartnerEventArchive" in partner_stack
    policy = engine.client("sqs").get_queue_attributes(QueueUrl=partner_stack["EventsQueue"], AttributeNames=["Policy"])
    statements = {s["Sid"]: s for s in json.loads(policy["Attributes"]["Policy"])["Statement"]}
    assert statements["PartnerEventsRuleSends"]["Condition"] == {"ArnEquals": {"aws:SourceArn": rule["Arn"]}}
    # the partner-bus alarms watch the created rule on the created bus
    alarms = engine.client("cloudwatch").describe_alarms(MaxRecords=100)["MetricAlarms"]
    rule_dimensions = [
        {d["Name"]: d["Value"] for d in a.get("Dimensions", [])}
        for a in alarms
        if a["AlarmName"].startswith(f"{PARTNER_STACK}-")
        and any(d["Name"] == "RuleName" for d in a.get("Dimensions", []))
    ]
    assert rule_dimensions, "no alarm on the partner rule"
    for dimensions in rule_dimensions:
        assert dimensions["RuleName"] == rule["Name"]
        assert dimensions.get("EventBusName", PARTNER_SOURCE) == PARTNER_SOURCE


def test_only_the_buy_with_prime_event_reaches_the_created_queue(
    engine: LocalStack, partner_stack: dict[str, str]
) -> None:
    # This LocalStack runs no function: stop EventsFunction's mapping from taking the messages. (Before
    # the update: after one, LocalStack 2026.3.0 can leave a second poller running that ignores this.)
    lambda_ = engine.client("lambda")
    queue_url = partner_stack["EventsQueue"]
    queue_arn = _queue_arn(engine, queue_url)
    (mapping,) = [
        m for m in lambda_.list_event_source_mappings()["EventSourceMappings"] if m["EventSourceArn"] == queue_arn
    ]
    lambda_.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    deadline = time.monotonic() + 30
    while lambda_.get_event_source_mapping(UUID=mapping["UUID"])["State"] != "Disabled":
        assert time.monotonic() < deadline, "the event source mapping was not disabled in 30 s"
        time.sleep(0.5)

    events = engine.client("events")
    foreign = {"Source": "com.example.not-buy-with-prime", "DetailType": "ORDER_CREATED", "Detail": '{"n": 1}'}
    ours = {"Source": PARTNER_SOURCE, "DetailType": "ORDER_CREATED", "Detail": '{"orderId": "e2e-1"}'}
    for entry in (foreign, ours):  # the foreign one first: once ours has arrived, so would it have
        answer = events.put_events(Entries=[{**entry, "EventBusName": PARTNER_SOURCE}])
        assert answer["FailedEntryCount"] == 0, answer

    sqs = engine.client("sqs")
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(b["source"] == PARTNER_SOURCE for b in received):
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
        received += [json.loads(m["Body"]) for m in answer.get("Messages", [])]
    answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
    received += [json.loads(m["Body"]) for m in answer.get("Messages", [])]
    counts = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    pollers = [line for line in engine.log_tail(100000).splitlines() if "sqs_poller" in line]
    assert [(b["source"], b["detail-type"], b["detail"]) for b in received] == [
        (PARTNER_SOURCE, "ORDER_CREATED", {"orderId": "e2e-1"})
    ], ({k: v for k, v in counts.items() if k.startswith("Approximate")}, pollers[-5:])


def test_update_with_a_parameter_change_updates_in_place(
    engine: LocalStack, built_template: Path, partner_stack: dict[str, str]
) -> None:
    _deploy(engine, built_template, PARTNER_STACK, **PARTNER_PARAMETERS, EventBatchSize="5", LogLevel="DEBUG")
    status = engine.client("cloudformation").describe_stacks(StackName=PARTNER_STACK)["Stacks"][0]["StackStatus"]
    assert status == "UPDATE_COMPLETE"
    updated = _resources(engine, PARTNER_STACK)
    for logical_id in ("InstallationsTable", "EventsQueue", "EventsFunction", "PartnerEventBus"):
        assert updated[logical_id] == partner_stack[logical_id], logical_id
    lambda_ = engine.client("lambda")
    queue_arn = _queue_arn(engine, updated["EventsQueue"])
    (mapping,) = [
        m for m in lambda_.list_event_source_mappings()["EventSourceMappings"] if m["EventSourceArn"] == queue_arn
    ]
    assert mapping["BatchSize"] == 5
    configuration = lambda_.get_function(FunctionName=updated["EventsFunction"])["Configuration"]
    assert configuration["LoggingConfig"]["ApplicationLogLevel"] == "DEBUG"
    assert configuration["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"] == "DEBUG"


# ------------------------------------------------------------------ an existing partner bus


def test_existing_bus_configuration_adds_only_the_rule(engine: LocalStack, built_template: Path) -> None:
    events = engine.client("events")
    bus_arn = events.create_event_bus(Name=EXISTING_SOURCE)["EventBusArn"]
    _deploy(engine, built_template, EXISTING_STACK, EventBusMode="existing", PartnerEventSourceName=EXISTING_SOURCE)
    created = _resources(engine, EXISTING_STACK)
    assert "PartnerEventBus" not in created
    rule = events.describe_rule(Name=f"{EXISTING_STACK}-partner-events", EventBusName=EXISTING_SOURCE)
    assert json.loads(rule["EventPattern"]) == {"source": [{"prefix": "aws.partner/buywithprime/"}]}
    (target,) = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=EXISTING_SOURCE)["Targets"]
    assert target["Arn"] == _queue_arn(engine, created["EventsQueue"])
    assert "PartnerEventArchive" in created  # a no-op on LocalStack, see above

    _run(
        [str(SAM), "delete", "--stack-name", EXISTING_STACK, "--no-prompts", "--region", "us-east-1"],
        engine.client_environment(),
    )
    # the bus was not the stack's: it stays
    assert events.describe_event_bus(Name=EXISTING_SOURCE)["Arn"] == bus_arn


# ------------------------------------------------------------------ sam delete


def test_sam_delete_removes_the_stack_and_retains_the_table(engine: LocalStack, default_stack: dict[str, str]) -> None:
    _run(
        [str(SAM), "delete", "--stack-name", STACK, "--no-prompts", "--region", "us-east-1"],
        engine.client_environment(),
    )
    stacks = engine.client("cloudformation").list_stacks()["StackSummaries"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"] == STACK)
    # DeletionPolicy Retain: the table (and the events' dead-letter queue) outlive the stack
    table = engine.client("dynamodb").describe_table(TableName=default_stack["InstallationsTable"])["Table"]
    assert table["TableStatus"] == "ACTIVE"
    sqs = engine.client("sqs")
    sqs.get_queue_attributes(QueueUrl=default_stack["EventsDeadLetterQueue"], AttributeNames=["QueueArn"])
    with pytest.raises(ClientError, match=r"NonExistentQueue|QueueDoesNotExist"):
        sqs.get_queue_attributes(QueueUrl=default_stack["EventsQueue"], AttributeNames=["QueueArn"])
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        engine.client("lambda").get_function(FunctionName=default_stack["EventsFunction"])
