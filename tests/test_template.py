"""Invariants of template.yaml and samconfig.toml that no linter checks.

`make validate` runs sam validate --lint, cfn-lint (with the serverless rules), checkov and cfn-guard
on template.yaml and on the template SAM deploys: dangling references, unknown attributes, schema
values, encryption and the like are theirs. What stays here ties the template to something else: the
code (handlers, the routes it serves, the variables and values it accepts, the DynamoDB calls it
makes, the keys and indexes it queries), or one part of the template to another (visibility against
timeouts, dead-letter retention against its queue's, alarms for every function and dead-letter
queue, the partner bus modes). A value that only repeats the template is not asserted. Where a check
is a function (`*_problems`), a test also feeds it a deliberately broken copy of the template, to
prove it can fail.
"""

from __future__ import annotations

import ast
import copy
import importlib
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from devtools.template import (
    PROJECT_ROOT,
    TEMPLATE_PATH,
    dynamodb_table_spec,
    load_template,
    resolve_conditions,
    resources_of_type,
    sam_translate,
)
from sandbox.server import BuyWithPrimeSandbox
from shared.settings import ENVIRONMENT_VARIABLES, PUBLISHED_VERIFICATION_KEY, load_settings
from shared.store.keys import PK, SK, SWEEP_HOUR, SWEEP_INDEX, SWEEP_SHARD, TENANT, TENANT_INDEX, TTL_ATTRIBUTE
from shared.wiring import SharedDependencies
from tests.app_driver import AppDriver
from tests.conftest import TABLE_NAME
from tests.events_driver import EventsDriver

SAMCONFIG_PATH = PROJECT_ROOT / "samconfig.toml"
EVENTS_DIR = PROJECT_ROOT / "events"
FUNCTION = "AWS::Serverless::Function"
TABLE_ARN = {"Fn::GetAtt": ["InstallationsTable", "Arn"]}

# Buy with Prime partner events the rule must forward (the envelope of the reference), and events it
# must not: other partners, look-alike names, AWS services, custom sources.
BWP_SOURCE = "aws.partner/buywithprime/my-app-events"
FOREIGN_SOURCES = [
    "aws.partner/shopify.com/123456/default",
    "aws.partner/buywithprime-impostor/my-app-events",
    "aws.partner/buywithprime",
    "aws.partner/BuyWithPrime/my-app-events",
    "buywithprime",
    "aws.events",
    "com.example.orders",
]

# The key Buy with Prime published (public, hence allowed in the template): the code's default.
PUBLISHED_KEY_BODY = "".join(PUBLISHED_VERIFICATION_KEY.strip().splitlines()[1:-1])

SECRET_LIKE_NAME = re.compile(
    r"secret|passw(or)?d|credential|private_?key|(access|refresh|bearer|auth)_?token|api_?key|client_?id",
    re.IGNORECASE,
)

# Placeholder values allowed where a client secret would go.
PLACEHOLDERS = {"...", "REPLACE_ME"}

# What a resource's !Ref stands for in a function's environment, for load_settings (the real ones
# exist only once deployed).
REF_VALUES = {
    "AWS::DynamoDB::Table": "InstallationsTable",
    "AWS::SecretsManager::Secret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:stack-secret-AbCdEf",
    "AWS::SQS::Queue": "https://sqs.us-east-1.amazonaws.com/123456789012/stack-EventsQueue",
    "AWS::Events::EventBus": "stack-app-events",
}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def own_table(template: dict[str, Any]) -> dict[str, Any]:
    """The template as deployed with the stack's own table (ExistingTableName empty, the default):
    the table's `!If [AdoptTable, ...]` resolved, every other condition left as it is. Adopting an
    existing table is checked on SAM's translation in tests/test_template_adoption.py."""
    return resolve_conditions(template, only={"AdoptTable", "CreateTable"})


@pytest.fixture(scope="module")
def deployed() -> dict[str, Any]:
    """The template as CloudFormation receives it (SAM's translation): policy templates expanded."""
    return sam_translate()


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    with SAMCONFIG_PATH.open("rb") as stream:
        return tomllib.load(stream)


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources_of_type(template, FUNCTION)


def function_setting(template: dict[str, Any], logical_id: str, name: str) -> Any:
    """A function property, falling back to Globals.Function (what SAM does)."""
    properties = template["Resources"][logical_id].get("Properties", {})
    if name in properties:
        return properties[name]
    return template.get("Globals", {}).get("Function", {}).get(name)


def http_api_routes(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every HttpApi event of every function."""
    routes = []
    for function_id, function in functions(template).items():
        for event_id, event in function.get("Properties", {}).get("Events", {}).items():
            if event.get("Type") == "HttpApi":
                routes.append({"function": function_id, "event": event_id, **event.get("Properties", {})})
    return routes


def iter_references(node: Any) -> Iterator[tuple[str, str, str | None]]:
    """Yield ("Ref", name, None), ("GetAtt", resource, attribute) and ("Sub", name, None) found in node."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield ("Ref", value, None)
            elif key == "Fn::GetAtt":
                parts = value.split(".", 1) if isinstance(value, str) else value
                yield ("GetAtt", parts[0], parts[1] if len(parts) > 1 else None)
            elif key == "Fn::Sub":
                text, local_vars = (value, {}) if isinstance(value, str) else (value[0], value[1])
                for name in re.findall(r"\$\{(?!!)([^}]+)\}", text):
                    if name not in local_vars:
                        yield ("Sub", name, None)
                yield from iter_references(local_vars)
            else:
                yield from iter_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from iter_references(item)


def iam_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) for inline statements of functions and of plain IAM resources."""
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        documents: list[tuple[str, Any]] = []
        if resource.get("Type") == FUNCTION:
            policies = properties.get("Policies", [])
            for index, policy in enumerate(policies if isinstance(policies, list) else [policies]):
                if isinstance(policy, dict) and "Statement" in policy:
                    documents.append((f"{logical_id}.Policies[{index}]", policy))
        elif resource.get("Type") == "AWS::IAM::Role":
            for index, policy in enumerate(properties.get("Policies", [])):
                documents.append((f"{logical_id}.Policies[{index}]", policy.get("PolicyDocument", {})))
        elif resource.get("Type") in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            documents.append((logical_id, properties.get("PolicyDocument", {})))
        for where, document in documents:
            statements = document.get("Statement", [])
            for index, statement in enumerate(statements if isinstance(statements, list) else [statements]):
                yield f"{where}.Statement[{index}]", statement


def strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)


def sub_text(value: Any) -> str:
    """The string of an !Sub (short or long form)."""
    assert isinstance(value, dict), value
    assert "Fn::Sub" in value, value
    sub = value["Fn::Sub"]
    return sub if isinstance(sub, str) else sub[0]


def top_level_names(source: str) -> dict[str, ast.AST]:
    names: dict[str, ast.AST] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.ImportFrom | ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = node
    return names


def sample_events() -> dict[str, tuple[Path, dict[str, Any]]]:
    """Sample events in events/, by routeKey (files without one, such as env.json, are skipped)."""
    samples = {}
    for path in sorted(EVENTS_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("routeKey"), str):
            samples[data["routeKey"]] = (path, data)
    return samples


def parameter_overrides(text: str) -> dict[str, str]:
    overrides = {}
    for item in shlex.split(text):
        name, _, value = item.partition("=")
        overrides[name] = value
    return overrides


def sqs_sample_events() -> dict[str, dict[str, Any]]:
    """The SQS batch samples in events/ (events/sqs-*.json), by file name."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(EVENTS_DIR.glob("sqs-*.json"))}


def getatt_of(value: Any) -> tuple[str, str] | None:
    """(resource, attribute) of an !GetAtt, else None."""
    if not isinstance(value, dict) or "Fn::GetAtt" not in value:
        return None
    getatt = value["Fn::GetAtt"]
    resource, attribute = getatt.split(".", 1) if isinstance(getatt, str) else getatt
    return resource, attribute


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_type_of(template: dict[str, Any], logical_id: str) -> str | None:
    return template.get("Resources", {}).get(logical_id, {}).get("Type")


def possible_numbers(template: dict[str, Any], value: Any) -> list[float]:
    """What a numeric property can be: the literal, or a parameter's Default and lowest allowed value."""
    if isinstance(value, int | float):
        return [value]
    parameter = template.get("Parameters", {}).get(value.get("Ref")) if isinstance(value, dict) else None
    if not parameter:
        return []
    return [float(parameter.get("Default", "-inf")), float(parameter.get("MinValue", "-inf"))]


def buy_with_prime_event(detail_type: str = "ORDER_CONFIRMED", source: str = BWP_SOURCE) -> dict[str, Any]:
    """An EventBridge event in the Buy with Prime envelope (reference section 4)."""
    resource = "businessProduct/bp-1/order/322-0000001-0000001"
    return {
        "version": "0",
        "id": "11111111-2222-4333-8444-555555555555",
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2025-01-20T12:34:56Z",
        "region": "us-east-1",
        "resources": [resource],
        "detail": {"eventDescriptor": detail_type, "resources": [resource], "apiVersion": "2024-11-01", "data": {}},
    }


def pattern_matches(pattern: Any, event: dict[str, Any]) -> bool:
    """EventBridge's matching, as moto implements it (prefix, anything-but, exists, ...)."""
    return bool(EventPattern.load(json.dumps(pattern) if pattern is not None else None).matches_event(event))


# The bus the rule listens on: the one this stack creates, else the existing one (same name as the source).
PARTNER_BUS_NAME = {
    "Fn::If": ["CreatePartnerBus", {"Fn::GetAtt": ["PartnerEventBus", "Name"]}, {"Ref": "PartnerEventSourceName"}]
}


def rule_problems(template: dict[str, Any]) -> list[str]:
    """The partner rule forwards Buy with Prime events only, to one queue, with retries and a DLQ that is
    also that queue's redrive target, on the partner bus (or none while no source is configured)."""
    rules = resources_of_type(template, "AWS::Events::Rule")
    if not rules:
        return ["no AWS::Events::Rule"]
    problems = []
    for rule_id, rule in rules.items():
        properties = rule.get("Properties", {})
        pattern = properties.get("EventPattern")
        for detail_type in ("ORDER_CONFIRMED", "REFUND_REQUESTED", "DELIVERY_COMPLETED", "SOMETHING_NEW"):
            if not pattern_matches(pattern, buy_with_prime_event(detail_type)):
                problems.append(f"{rule_id}: EventPattern drops a Buy with Prime {detail_type} event")
        for source in FOREIGN_SOURCES:
            if pattern_matches(pattern, buy_with_prime_event(source=source)):
                problems.append(f"{rule_id}: EventPattern forwards events from {source}")
        if rule.get("Condition") != "HasPartnerEventSource":
            problems.append(f"{rule_id}: must have Condition HasPartnerEventSource (no rule without a source)")
        if properties.get("EventBusName") != PARTNER_BUS_NAME:
            problems.append(f"{rule_id}: EventBusName must be the partner bus, got {properties.get('EventBusName')!r}")
        targets = properties.get("Targets", [])
        if len(targets) != 1:
            problems.append(f"{rule_id}: expected exactly one target, got {len(targets)}")
        for target in targets:
            problems += rule_target_problems(template, f"{rule_id}.Targets[{target.get('Id')}]", target)
    return problems


def is_queue_arn(template: dict[str, Any], getatt: tuple[str, str] | None) -> bool:
    return bool(getatt) and getatt[1] == "Arn" and resource_type_of(template, getatt[0]) == "AWS::SQS::Queue"


def rule_target_problems(template: dict[str, Any], where: str, target: dict[str, Any]) -> list[str]:
    """A queue of this template, retried as long as EventBridge can, with a DLQ that is also the
    queue's redrive target (one place to look, one redrive to replay)."""
    queue = getatt_of(target.get("Arn"))
    dlq = getatt_of((target.get("DeadLetterConfig") or {}).get("Arn"))
    if not is_queue_arn(template, queue):
        return [f"{where}: Arn must be !GetAtt <a queue of this template>.Arn"]
    if not is_queue_arn(template, dlq):
        return [f"{where}: DeadLetterConfig.Arn must be !GetAtt <a queue of this template>.Arn"]
    assert queue and dlq  # for the type checker: is_queue_arn said so
    problems = []
    if dlq[0] == queue[0]:
        problems.append(f"{where}: the dead-letter queue is the target queue itself")
    redrive = template["Resources"][queue[0]].get("Properties", {}).get("RedrivePolicy") or {}
    redrive_target = getatt_of(redrive.get("deadLetterTargetArn"))
    if redrive_target != (dlq[0], "Arn"):
        problems.append(f"{where}: {queue[0]} redrives to {redrive_target}, not to the target's DLQ {dlq[0]}")
    return problems


def partner_bus_problems(template: dict[str, Any]) -> list[str]:
    """A created partner bus carries the source's name, and exists only in `create` mode."""
    problems = []
    buses = {  # the partner bus; the app event bus is a custom bus (no event source)
        bus_id: bus
        for bus_id, bus in resources_of_type(template, "AWS::Events::EventBus").items()
        if bus_id != "AppEventBus"
    }
    if not buses:
        problems.append("no AWS::Events::EventBus")
    for bus_id, bus in buses.items():
        properties = bus.get("Properties", {})
        if properties.get("Name") != properties.get("EventSourceName"):
            problems.append(f"{bus_id}: Name {properties.get('Name')!r} != EventSourceName (events would be dropped)")
        if properties.get("EventSourceName") != {"Ref": "PartnerEventSourceName"}:
            problems.append(f"{bus_id}: EventSourceName must be !Ref PartnerEventSourceName")
        if bus.get("Condition") != "CreatePartnerBus":
            problems.append(f"{bus_id}: must have Condition CreatePartnerBus")
    conditions = template.get("Conditions", {})
    not_empty = {"Fn::Not": [{"Fn::Equals": [{"Ref": "PartnerEventSourceName"}, ""]}]}
    if conditions.get("HasPartnerEventSource") != not_empty:
        problems.append("HasPartnerEventSource must be: PartnerEventSourceName is not empty")
    if conditions.get("CreatePartnerBus") != {
        "Fn::And": [{"Condition": "HasPartnerEventSource"}, {"Fn::Equals": [{"Ref": "EventBusMode"}, "create"]}]
    }:
        problems.append("CreatePartnerBus must be: HasPartnerEventSource and EventBusMode = create")
    return problems


def sqs_event_source_problems(template: dict[str, Any]) -> list[str]:
    """Every SQS event source: the queue by !GetAtt Arn, partial batch responses, a concurrency cap
    Lambda accepts, and a visibility timeout of at least 6 x the function's timeout."""
    problems = []
    for function_id in functions(template):
        timeout = function_setting(template, function_id, "Timeout")
        events = template["Resources"][function_id].get("Properties", {}).get("Events", {})
        for event_id, event in events.items():
            if event.get("Type") != "SQS":
                continue
            where = f"{function_id}.Events.{event_id}"
            properties = event.get("Properties", {})
            if "ReportBatchItemFailures" not in (properties.get("FunctionResponseTypes") or []):
                problems.append(f"{where}: FunctionResponseTypes lacks ReportBatchItemFailures (a batch fails as one)")
            concurrency = (properties.get("ScalingConfig") or {}).get("MaximumConcurrency")
            values = possible_numbers(template, concurrency)
            if not values or min(values) < 2:
                problems.append(f"{where}: ScalingConfig.MaximumConcurrency must be at least 2, got {concurrency!r}")
            queue = getatt_of(properties.get("Queue"))
            if not queue or not is_queue_arn(template, queue):
                problems.append(f"{where}: Queue must be !GetAtt <a queue of this template>.Arn")
                continue
            visibility = template["Resources"][queue[0]].get("Properties", {}).get("VisibilityTimeout", 30)
            if not isinstance(timeout, int) or not isinstance(visibility, int) or visibility < 6 * timeout:
                problems.append(f"{where}: {queue[0]} VisibilityTimeout {visibility} < 6 x Timeout {timeout}")
    return problems


def retention_problems(template: dict[str, Any]) -> list[str]:
    """A dead-letter queue keeps a message longer than the queue it came from: a moved message keeps
    its enqueue time, so a DLQ that keeps it no longer would drop it the moment it lands."""
    queues = resources_of_type(template, "AWS::SQS::Queue")

    def retention(queue_id: str) -> Any:
        return queues[queue_id].get("Properties", {}).get("MessageRetentionPeriod", 4 * 24 * 3600)  # SQS's default

    problems = []
    for queue_id, queue in queues.items():
        dlq = getatt_of((queue.get("Properties", {}).get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
        if dlq and dlq[0] in queues and not retention(dlq[0]) > retention(queue_id):
            problems.append(
                f"{dlq[0]} keeps messages {retention(dlq[0])} s, not longer than {queue_id} ({retention(queue_id)} s)"
            )
    return problems


def queue_policy_grants(policy: dict[str, Any], queue_id: str, rule_id: str, rule_condition: str | None) -> bool:
    """Does this queue policy let the rule (only) send to the queue?"""
    properties = policy.get("Properties", {})
    if {"Ref": queue_id} not in properties.get("Queues", []):
        return False
    for statement in as_list(properties.get("PolicyDocument", {}).get("Statement", [])):
        if "Fn::If" in statement:
            condition, statement, _ = statement["Fn::If"]  # noqa: PLW2901 - the branch that exists
            if condition != rule_condition:
                continue
        if (
            statement.get("Effect") == "Allow"
            and statement.get("Principal") == {"Service": "events.amazonaws.com"}
            and "sqs:SendMessage" in as_list(statement.get("Action"))
            and {"Fn::GetAtt": [queue_id, "Arn"]} in as_list(statement.get("Resource"))
            and (statement.get("Condition") or {}).get("ArnEquals", {}).get("aws:SourceArn")
            == {"Fn::GetAtt": [rule_id, "Arn"]}
        ):
            return True
    return False


def queue_policy_problems(template: dict[str, Any]) -> list[str]:
    """The rule's target and DLQ each accept SendMessage from EventBridge for this rule's ARN only."""
    policies = resources_of_type(template, "AWS::SQS::QueuePolicy")
    problems = []
    for rule_id, rule in resources_of_type(template, "AWS::Events::Rule").items():
        for target in rule.get("Properties", {}).get("Targets", []):
            for value in (target.get("Arn"), (target.get("DeadLetterConfig") or {}).get("Arn")):
                queue = getatt_of(value)
                condition = rule.get("Condition")
                if queue and not any(queue_policy_grants(p, queue[0], rule_id, condition) for p in policies.values()):
                    problems.append(f"no queue policy lets {rule_id} (aws:SourceArn = its Arn) send to {queue[0]}")
    for policy_id, policy in policies.items():
        for statement in as_list(policy.get("Properties", {}).get("PolicyDocument", {}).get("Statement", [])):
            branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
            for branch in branches:
                if branch.get("Effect") == "Allow" and "aws:SourceArn" not in json.dumps(branch.get("Condition")):
                    problems.append(f"{policy_id}: an Allow statement without an aws:SourceArn condition")
    return problems


def insecure_transport_problems(template: dict[str, Any]) -> list[str]:
    """Every queue a queue policy covers refuses requests without TLS."""
    problems = []
    for policy_id, policy in resources_of_type(template, "AWS::SQS::QueuePolicy").items():
        properties = policy.get("Properties", {})
        denied = [
            arn
            for statement in as_list(properties.get("PolicyDocument", {}).get("Statement", []))
            if statement.get("Effect") == "Deny"
            and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            and statement.get("Principal") == "*"
            and "sqs:*" in as_list(statement.get("Action"))
            for arn in as_list(statement.get("Resource"))
        ]
        for queue in properties.get("Queues", []):
            if {"Fn::GetAtt": [queue.get("Ref"), "Arn"]} not in denied:
                problems.append(f"{policy_id}: {queue.get('Ref')} does not refuse plain HTTP (aws:SecureTransport)")
    return problems


def alarms_on(template: dict[str, Any], namespace: str, metric: str, dimension: dict[str, Any]) -> list[Any]:
    """Properties of the alarms on one metric of one resource (dimension: {"Name": ..., "Value": ...})."""
    return [
        alarm["Properties"]
        for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == namespace
        and alarm["Properties"].get("MetricName") == metric
        and alarm["Properties"].get("Dimensions") == [dimension]
    ]


def queue_dimension(queue_id: str) -> dict[str, Any]:
    return {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}


def fires_on_first(alarm: dict[str, Any]) -> bool:
    """True if one occurrence (a count of 1) puts the alarm in ALARM."""
    operator, threshold = alarm.get("ComparisonOperator"), alarm.get("Threshold")
    return (operator == "GreaterThanOrEqualToThreshold" and threshold <= 1) or (
        operator == "GreaterThanThreshold" and threshold < 1
    )


def dead_letter_queues(template: dict[str, Any]) -> set[str]:
    """Queues that are a redrive target or a rule target's DLQ."""
    found = set()
    for queue in resources_of_type(template, "AWS::SQS::Queue").values():
        found.add(getatt_of((queue.get("Properties", {}).get("RedrivePolicy") or {}).get("deadLetterTargetArn")))
    for rule in resources_of_type(template, "AWS::Events::Rule").values():
        for target in rule.get("Properties", {}).get("Targets", []):
            found.add(getatt_of((target.get("DeadLetterConfig") or {}).get("Arn")))
    return {getatt[0] for getatt in found if getatt}


def event_source_queues(template: dict[str, Any]) -> set[str]:
    """Queues some function's SQS event source reads."""
    return {
        getatt[0]
        for function in functions(template).values()
        for event in function.get("Properties", {}).get("Events", {}).values()
        if event.get("Type") == "SQS" and (getatt := getatt_of(event.get("Properties", {}).get("Queue")))
    }


def alarm_problems(template: dict[str, Any]) -> list[str]:
    """Each function's errors, each DLQ's first message and each event queue's backlog have an alarm,
    and every alarm notifies a topic of this template on ALARM and on OK."""
    topics = [{"Ref": topic} for topic in resources_of_type(template, "AWS::SNS::Topic")]
    problems = []
    for alarm_id, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items():
        properties = alarm["Properties"]
        for key in ("AlarmActions", "OKActions"):
            if not any(action in topics for action in properties.get(key, [])):
                problems.append(f"{alarm_id}: {key} notify no SNS topic of this template")
        # idle is healthy, except for an alarm on too little (silence is what it looks for)
        expected = "breaching" if properties.get("ComparisonOperator", "").startswith("LessThan") else "notBreaching"
        if properties.get("TreatMissingData") != expected:
            problems.append(f"{alarm_id}: TreatMissingData must be {expected}")
    for function_id in functions(template):
        errors = alarms_on(template, "AWS/Lambda", "Errors", {"Name": "FunctionName", "Value": {"Ref": function_id}})
        if not any(fires_on_first(alarm) for alarm in errors):
            problems.append(f"{function_id}: no alarm on its first Errors")
    for queue_id in sorted(dead_letter_queues(template)):
        visible = alarms_on(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue_dimension(queue_id))
        if not any(fires_on_first(alarm) for alarm in visible):
            problems.append(f"{queue_id}: no alarm on its first message")
    for queue_id in sorted(event_source_queues(template)):
        if not alarms_on(template, "AWS/SQS", "ApproximateAgeOfOldestMessage", queue_dimension(queue_id)):
            problems.append(f"{queue_id}: no alarm on the age of its oldest message (a backlog)")
    return problems


def topic_encryption_problems(template: dict[str, Any]) -> list[str]:
    """Alarm topics are encrypted with a key of this stack whose policy lets CloudWatch use it for
    exactly that topic (the AWS managed alias/aws/sns key cannot: alarms would be dropped)."""
    problems = []
    for topic_id, topic in resources_of_type(template, "AWS::SNS::Topic").items():
        properties = topic.get("Properties", {})
        key = properties.get("KmsMasterKeyId")
        key_id = key.get("Ref") if isinstance(key, dict) else None
        if resource_type_of(template, key_id or "") != "AWS::KMS::Key":
            problems.append(f"{topic_id}: KmsMasterKeyId must be !Ref <an AWS::KMS::Key of this template>, got {key!r}")
            continue
        topic_name = sub_text(properties["TopicName"]) if "TopicName" in properties else None
        topic_arn = f"arn:${{AWS::Partition}}:sns:${{AWS::Region}}:${{AWS::AccountId}}:{topic_name}"
        statements = as_list(template["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"])
        granted = [
            statement
            for statement in statements
            if statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
            and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(as_list(statement.get("Action")))
            and statement.get("Condition", {}).get("StringEquals", {}).get("kms:EncryptionContext:aws:sns:topicArn")
            == {"Fn::Sub": topic_arn}
        ]
        if not topic_name or not granted:
            problems.append(f"{key_id}: its policy does not let cloudwatch.amazonaws.com use it for {topic_arn}")
    return problems


def secret_problems(text: str) -> list[str]:
    """Strings that look like credentials (the published public key excepted)."""
    text = text.replace(PUBLISHED_KEY_BODY[:64], "").replace(PUBLISHED_KEY_BODY[64:], "")
    text = text.replace(PUBLISHED_KEY_BODY, "")
    patterns = {
        "JWT": r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        "Login with Amazon token": r"Atz[ar]\|[A-Za-z0-9_-]+",
        "Login with Amazon client secret": r"amzn1\.oa2-cs\.v1\.[A-Za-z0-9]+",
        "AWS access key id": r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
        "PEM private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
        "client_secret value": r'client_secret\\?"\s*:\s*\\?"([^"\\]*)',
        "long opaque token": r"(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_-]{40,}={0,2}",
    }
    problems = []
    for label, pattern in patterns.items():
        for match in re.finditer(pattern, text):
            found = match.group(0)
            if label == "client_secret value" and match.group(1) in PLACEHOLDERS:
                continue
            if label == "long opaque token" and not (re.search(r"\d", found) and re.search(r"[A-Za-z]", found)):
                continue
            problems.append(f"{label}: {found[:12]}...")
    return problems


def wildcard_problems(template: dict[str, Any]) -> list[str]:
    """No managed policy by name on a function. Allow statements: Action and Resource, no wildcard, no
    NotAction/NotResource. A Deny may use NotResource ("deny everywhere but here"), the one way to
    narrow a managed policy SAM attaches."""
    problems = []
    for function_id, function in functions(template).items():
        for policy in as_list(function.get("Properties", {}).get("Policies", [])):
            if isinstance(policy, str):
                problems.append(f"{function_id}: managed policy {policy!r} (use a scoped template or statement)")
    for where, statement in iam_statements(template):
        deny = statement.get("Effect") == "Deny"
        resource_key = "NotResource" if deny and "NotResource" in statement else "Resource"
        for forbidden in ("NotAction", "NotResource"):
            if forbidden in statement and not (deny and forbidden == "NotResource"):
                problems.append(f"{where}: uses {forbidden}")
        for key in ("Action", resource_key):
            if key not in statement:
                problems.append(f"{where}: has no {key}")
            problems.extend(
                f"{where}.{key}: {text!r} contains '*'" for text in strings_in(statement.get(key)) if "*" in text
            )
        for kind, name, attribute in iter_references(statement.get(resource_key)):
            if kind == "GetAtt" and not (attribute or "").endswith("Arn"):
                problems.append(f"{where}.{resource_key}: !GetAtt {name}.{attribute} is not an ARN")
    return problems


class Recording:
    """A DynamoDB client that records the IAM action of every call it passes on: TransactWriteItems
    has no action of its own, each of its items is authorised as its own item action."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.actions: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def recorded(**kwargs: Any) -> Any:
            if name == "transact_write_items":
                kinds = {kind for item in kwargs["TransactItems"] for kind in item}
                self.actions |= {
                    "dynamodb:" + {"ConditionCheck": "ConditionCheckItem"}.get(k, k + "Item") for k in kinds
                }
            else:
                self.actions.add("dynamodb:" + "".join(part.title() for part in name.split("_")))
            return method(**kwargs)

        return recorded


def table_actions(template: dict[str, Any], function_id: str) -> set[str]:
    """The DynamoDB actions the function's inline statements allow on the table (and none elsewhere)."""
    allowed: set[str] = set()
    for where, statement in iam_statements(template):
        actions = {a for a in strings_in(statement.get("Action")) if a.startswith("dynamodb:")}
        if not where.startswith(f"{function_id}.") or not actions:
            continue
        assert statement["Effect"] == "Allow", where
        assert as_list(statement["Resource"]) == [TABLE_ARN], f"{where}: DynamoDB on {statement['Resource']!r}"
        allowed |= actions
    return allowed


def environment(template: dict[str, Any], function_id: str, **parameters: Any) -> dict[str, str]:
    """The function's environment as deployed: parameters at their Default unless given, a
    resource's !Ref at a value of its kind, an !If at its first branch."""

    def value(binding: Any) -> str:
        if isinstance(binding, dict) and "Fn::If" in binding:
            return value(binding["Fn::If"][1])
        if isinstance(binding, dict) and "Ref" in binding:
            name = binding["Ref"]
            if name in template["Parameters"]:
                return str(parameters.get(name, template["Parameters"][name].get("Default", "")))
            return REF_VALUES[resource_type_of(template, name) or ""]
        return str(binding)

    variables = template["Resources"][function_id]["Properties"].get("Environment", {}).get("Variables", {})
    return {name: value(binding) for name, binding in variables.items()}


def settings_functions(template: dict[str, Any]) -> list[str]:
    """Functions whose code reads its configuration through shared/settings.py (SharedDependencies)."""
    found = []
    for function_id, function in functions(template).items():
        package = str(function["Properties"]["Handler"]).split(".")[0]
        if not (PROJECT_ROOT / "src" / package / "dependencies.py").exists():
            continue
        dependencies = importlib.import_module(f"{package}.dependencies").Dependencies
        if issubclass(dependencies, SharedDependencies):
            found.append(function_id)
    return found


# --------------------------------------------------------------------------- template_loader


def test_loader_turns_short_form_intrinsics_into_long_form_and_keeps_dates_as_strings(tmp_path: Path) -> None:
    # given a template using short-form tags and an unquoted date
    path = tmp_path / "t.yaml"
    path.write_text(
        "AWSTemplateFormatVersion: 2010-09-09\n"
        "Resources:\n"
        "  R:\n"
        "    Properties:\n"
        "      A: !Ref X\n"
        "      B: !GetAtt T.Arn\n"
        "      C: !Sub ${X}/y\n"
        "      D: !If [Cond, !Ref X, !Ref AWS::NoValue]\n"
        "      E: !Join ['', [a, b]]\n"
        "      F: !Condition Cond\n",
        encoding="utf-8",
    )
    # when it is loaded
    loaded = load_template(path)
    # then every tag is in CloudFormation's long form and the date is a string
    assert loaded["AWSTemplateFormatVersion"] == "2010-09-09"
    assert loaded["Resources"]["R"]["Properties"] == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["T", "Arn"]},
        "C": {"Fn::Sub": "${X}/y"},
        "D": {"Fn::If": ["Cond", {"Ref": "X"}, {"Ref": "AWS::NoValue"}]},
        "E": {"Fn::Join": ["", ["a", "b"]]},
        "F": {"Condition": "Cond"},
    }


# --------------------------------------------------------------------------- functions and code


def test_every_function_runs_the_python_and_architecture_its_artifact_is_built_for(template: dict[str, Any]) -> None:
    # given what src/Makefile builds for: .pyc of one Python version, wheels of one architecture
    makefile = (PROJECT_ROOT / "src" / "Makefile").read_text(encoding="utf-8")
    python = re.search(r"^PYTHON\s*\?=\s*(\S+)", makefile, re.M)
    arch = re.search(r"^LAMBDA_ARCH\s*\?=\s*(\S+)", makefile, re.M)
    assert python and arch, "src/Makefile no longer sets PYTHON and LAMBDA_ARCH"
    assert functions(template), "the template defines no AWS::Serverless::Function"
    for logical_id in functions(template):
        # then each function (built by it: tests/test_build_split.py) runs that Python on that architecture
        assert function_setting(template, logical_id, "Runtime") == python.group(1), logical_id
        assert function_setting(template, logical_id, "Architectures") == [arch.group(1)], logical_id


def test_every_function_handler_resolves_to_a_function_in_its_code_uri(template: dict[str, Any]) -> None:
    for logical_id in functions(template):
        # given the function's CodeUri and Handler
        code_uri = PROJECT_ROOT / function_setting(template, logical_id, "CodeUri")
        handler = function_setting(template, logical_id, "Handler")
        module, _, function_name = handler.rpartition(".")
        # when the module is looked up under CodeUri
        module_path = code_uri.joinpath(*module.split("."))
        candidates = [module_path.with_suffix(".py"), module_path / "__init__.py"]
        existing = [path for path in candidates if path.is_file()]
        # then the module exists and defines the handler at top level, taking (event, context)
        assert code_uri.is_dir(), f"{logical_id}: CodeUri {code_uri} is not a directory"
        assert existing, f"{logical_id}: handler module {module} not found under {code_uri}"
        names = top_level_names(existing[0].read_text(encoding="utf-8"))
        assert function_name in names, f"{logical_id}: {existing[0]} defines no {function_name}"
        node = names[function_name]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            positional = node.args.posonlyargs + node.args.args
            assert len(positional) >= 2 or node.args.vararg, f"{logical_id}: {handler} must accept (event, context)"


def test_every_variable_a_function_sets_is_one_its_code_reads(template: dict[str, Any]) -> None:
    for logical_id, function in functions(template).items():
        # given the handler package's own source (the example consumer reads its variable itself)
        package = str(function["Properties"]["Handler"]).split(".")[0]
        source = "".join(p.read_text() for p in (PROJECT_ROOT / "src" / package).glob("*.py"))
        # then every (non-Powertools) variable the template sets is read: no typo goes unread
        names = set(function["Properties"].get("Environment", {}).get("Variables", {}))
        unknown = {name for name in names if not name.startswith("POWERTOOLS_")} - set(ENVIRONMENT_VARIABLES.values())
        unread = {name for name in unknown if f'os.environ["{name}"]' not in source}
        assert not unread, f"{logical_id} sets variables its code never reads: {sorted(unread)}"


def test_every_setting_the_code_reads_is_set_by_some_function(template: dict[str, Any]) -> None:
    # given every variable any function sets, then each one shared/settings.py reads is among them
    set_somewhere = {
        name
        for f in functions(template).values()
        for name in f["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert set(ENVIRONMENT_VARIABLES.values()) - set_somewhere == set(), "a setting no deployed function receives"


def test_the_code_accepts_every_deployed_configuration_and_defaults_agree(own_table: dict[str, Any]) -> None:
    """Each function reading shared/settings.py gets the variables it requires, and load_settings
    accepts its environment at every parameter's Default, MinValue, MaxValue and AllowedValues (else
    the function fails on its first request, after a successful deploy); where the code has a
    default of its own, the template's Default is the same value (an unset variable, as in local
    runs, behaves as a default deployment)."""
    users = settings_functions(own_table)
    assert {"OAuthFunction", "EventsFunction", "SweepFunction", "TokenBrokerFunction"} <= set(users)
    code_defaults = load_settings(
        {"TABLE_NAME": "t-able", "CLIENT_CREDENTIALS_SECRET_ARN": REF_VALUES["AWS::SecretsManager::Secret"]}
    )
    fields = {name: field for field, name in ENVIRONMENT_VARIABLES.items()}
    for function_id in users:
        deployed = load_settings(environment(own_table, function_id))
        variables = own_table["Resources"][function_id]["Properties"]["Environment"]["Variables"]
        for name, binding in variables.items():
            parameter_name = binding.get("Ref") if isinstance(binding, dict) else None
            parameter = own_table["Parameters"].get(parameter_name or "")
            if parameter_name is None or parameter is None:
                continue
            candidates = [parameter.get(k) for k in ("Default", "MinValue", "MaxValue")] + parameter.get(
                "AllowedValues", []
            )
            for candidate in (c for c in candidates if c is not None):
                load_settings(environment(own_table, function_id, **{parameter_name: candidate}))
            if str(parameter.get("Default", "")).strip() and name in fields:
                field = fields[name]
                assert getattr(deployed, field) == getattr(code_defaults, field), (
                    f"{parameter_name} Default != the code's {field}"
                )


def test_the_verification_key_pattern_accepts_every_form_the_code_reads(template: dict[str, Any]) -> None:
    # given the published key in each form normalise_public_key reads (shared/settings.py)
    pattern = re.compile(template["Parameters"]["BwpVerificationPublicKey"]["AllowedPattern"])
    pem = PUBLISHED_VERIFICATION_KEY
    # then the parameter accepts real newlines, literal \n and the bare body, and not other text
    for form in (pem, pem.replace("\n", "\\n"), PUBLISHED_KEY_BODY):
        assert pattern.fullmatch(form), form
    assert not pattern.fullmatch('{"kty": "EC"}')


def test_every_log_level_parameter_value_maps_to_a_lambda_level(template: dict[str, Any]) -> None:
    # given the LogLevel parameter and the mapping Lambda's ApplicationLogLevel is looked up in
    allowed = template["Parameters"]["LogLevel"]["AllowedValues"]
    mapping = template["Mappings"]["LogLevels"]
    # then every allowed value has an entry (else the deploy fails on FindInMap), a level Lambda knows
    assert set(mapping) == set(allowed)
    assert {entry["Lambda"] for entry in mapping.values()} <= {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}


def test_every_function_has_a_log_group_with_retention(template: dict[str, Any]) -> None:
    # given the log groups of the template, by name (cfn-guard's retention rule is suppressed for them)
    log_groups = {
        sub_text(group["Properties"]["LogGroupName"]): group
        for group in resources_of_type(template, "AWS::Logs::LogGroup").values()
    }
    for logical_id in functions(template):
        # then each function's /aws/lambda/<name> group exists (else Lambda makes one that never expires)
        group = log_groups.get(f"/aws/lambda/${{{logical_id}}}")
        assert group, f"{logical_id}: no AWS::Logs::LogGroup named !Sub /aws/lambda/${{{logical_id}}}"
        assert group["Properties"].get("RetentionInDays"), f"{logical_id}: its log group never expires"


# --------------------------------------------------------------------------- IAM


def test_iam_statements_have_no_wildcards(template: dict[str, Any], deployed: dict[str, Any]) -> None:
    # given every inline IAM statement, as written and as deployed (policy templates expanded into
    # the functions' roles), then none uses '*' in Action or Resource
    for document in (template, deployed):
        assert list(iam_statements(document)), "no inline statement found: the check would be vacuous"
        assert wildcard_problems(document) == []


def test_wildcard_check_catches_a_policy_template_that_expands_to_a_wildcard(template: dict[str, Any]) -> None:
    # given a policy template whose expansion allows every index of the table ("<table>/index/*")
    broken = copy.deepcopy(template)
    crud = {"DynamoDBCrudPolicy": {"TableName": {"Ref": "InstallationsTable"}}}
    broken["Resources"]["SweepFunction"]["Properties"]["Policies"].append(crud)
    # when the deployed template is checked, then the expansion is reported
    assert any("contains '*'" in problem for problem in wildcard_problems(sam_translate(broken)))


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": {"Fn::GetAtt": ["InstallationsTable", "Arn"]}},
        {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": {"Fn::Sub": "${InstallationsTable.Arn}/*"}},
        {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "arn:aws:s3:::b"},
        {"Effect": "Allow", "Action": ["sqs:ReceiveMessage"], "NotResource": "arn:aws:sqs:us-east-1:1:q"},
        {"Effect": "Deny", "Action": ["sqs:ReceiveMessage"], "NotResource": {"Fn::Sub": "${EventsQueue.Arn}*"}},
        "AmazonDynamoDBFullAccess",
    ],
    ids=[
        "action-wildcard",
        "resource-star",
        "resource-sub-wildcard",
        "not-action",
        "allow-not-resource",
        "deny-wild",
        "managed-policy",
    ],
)
def test_wildcard_check_catches_wildcards(template: dict[str, Any], statement: Any) -> None:
    # given a copy of the template with a broad statement added, when checked, then it is reported
    broken = copy.deepcopy(template)
    policy = statement if isinstance(statement, str) else {"Version": "2012-10-17", "Statement": [statement]}
    broken["Resources"]["OAuthFunction"]["Properties"]["Policies"].append(policy)
    assert wildcard_problems(broken)


def test_the_oauth_role_allows_exactly_the_table_actions_the_lifecycle_calls(
    app: AppDriver, own_table: dict[str, Any]
) -> None:
    # given the OAuth function's DynamoDB client, recorded through a Launch, Install, Settings and Uninstall
    recording = Recording(app.deps.dynamodb)
    app.deps.dynamodb = recording
    assert app.install("amzn1.bwp.installation.iam").status == 200
    assert app.settings("amzn1.bwp.installation.iam").status == 200
    assert app.uninstall("amzn1.bwp.installation.iam").status == 200
    # then its role allows each action on the table, and no other (sweep: tests/test_idle_sweep.py)
    assert table_actions(own_table, "OAuthFunction") == recording.actions


def test_the_events_role_allows_the_table_actions_a_batch_calls(
    environ: dict[str, str], sandbox: BuyWithPrimeSandbox, own_table: dict[str, Any]
) -> None:
    # given the events function (open-order markers on) with an expired token, recorded through a
    # new order, its redelivery and a later event of the same order
    events = EventsDriver({**environ, "REHYDRATE_OPEN_ORDERS_HOURS": "24"}, sandbox, TABLE_NAME)
    recording = Recording(events.lambda_deps.dynamodb)
    events.lambda_deps.dynamodb = recording
    events.install("amzn1.bwp.installation.iam", "amzn1.bp.product.iam", expired=True)
    confirmed = events.order_event("amzn1.bp.product.iam", "322-0000009-0000001")
    delivered = events.order_event("amzn1.bp.product.iam", "322-0000009-0000001", "DELIVERY_COMPLETED")
    for envelope in (confirmed, confirmed, delivered):
        assert events.handle(envelope)[0] == {"batchItemFailures": []}
    # then its role allows each of those actions on the table, and nothing else but DeleteItem
    # (forget_rescued_tokens, the token service's recovery after a refreshed pair went unstored)
    allowed = table_actions(own_table, "EventsFunction")
    assert recording.actions <= allowed, recording.actions - allowed
    assert allowed - recording.actions <= {"dynamodb:DeleteItem"}


def test_the_events_function_may_touch_no_queue_but_its_event_source(own_table: dict[str, Any]) -> None:
    # given the events function's statements and the queue its SQS event source reads
    properties = own_table["Resources"]["EventsFunction"]["Properties"]
    queue = properties["Events"]["PartnerEventsQueue"]["Properties"]["Queue"]
    statements = [s for p in properties["Policies"] if isinstance(p, dict) for s in p.get("Statement", [])]
    sqs = [s for s in statements if any(a.startswith("sqs:") for a in strings_in(s.get("Action")))]
    # then SAM's AWSLambdaSQSQueueExecutionRole (every queue) is denied everywhere but that queue
    denies = [s for s in sqs if s["Effect"] == "Deny"]
    assert len(denies) == 1 and {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= set(denies[0]["Action"])
    assert denies[0]["NotResource"] == queue
    # and what it is allowed on a queue (delaying the records it sends back) is on that queue only
    assert all(as_list(s["Resource"]) == [queue] for s in sqs if s["Effect"] == "Allow")


# --------------------------------------------------------------------------- HTTP API


def test_the_api_declares_exactly_the_routes_the_oauth_handler_serves(template: dict[str, Any]) -> None:
    from oauth.handler import ROUTES

    # given every HttpApi event of the template
    routes = http_api_routes(template)
    # then they are the handler's routes, on the OAuth function, in the payload the handler parses
    assert sorted((route["Method"], route["Path"]) for route in routes) == sorted(
        (m, p) for p, (m, _) in ROUTES.items()
    )
    for route in routes:
        assert route["function"] == "OAuthFunction", route
        assert route["ApiId"] == {"Ref": "HttpApi"}, route
        assert route["PayloadFormatVersion"] == "2.0", route


def test_the_sample_events_are_exactly_the_routes_of_the_template(template: dict[str, Any]) -> None:
    # given the routes of the template and the sample events in events/, by routeKey
    route_keys = {f"{route['Method']} {route['Path']}" for route in http_api_routes(template)}
    samples = sample_events()
    # then each route has one and none targets a route the template lacks
    assert set(samples) == route_keys
    for route_key, (sample_path, sample) in samples.items():
        # and each is an HTTP API payload 2.0 event for that method and path
        method, path = route_key.split(" ", 1)
        assert sample.get("version") == "2.0", sample_path
        assert sample["rawPath"] == path, sample_path
        assert sample["requestContext"]["http"]["method"] == method, sample_path
        assert sample["requestContext"].get("routeKey", route_key) == route_key, sample_path
        assert sample["requestContext"]["http"].get("path", path) == path, sample_path


def test_functions_behind_the_http_api_time_out_before_api_gateway(template: dict[str, Any]) -> None:
    # given the functions serving HTTP API routes (API Gateway HTTP API gives up after 30 s)
    behind_api = {route["function"] for route in http_api_routes(template)}
    assert behind_api
    for logical_id in behind_api:
        # when their effective timeout is read, then it is below 30 s
        timeout = function_setting(template, logical_id, "Timeout")
        assert isinstance(timeout, int), f"{logical_id}: Timeout {timeout!r}"
        assert timeout < 30, f"{logical_id}: Timeout {timeout} s >= API Gateway's 30 s"


def test_access_logs_carry_no_path_or_query_string(template: dict[str, Any]) -> None:
    # given the HTTP API's access log format (the OAuth code and signed tokens ride in the query)
    log_format = template["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]["Format"]
    record = json.loads(log_format)
    # then it is JSON with the request's identity and outcome, without any path/query variable
    assert {"requestId", "routeKey", "status", "responseLatency", "integrationErrorMessage"} <= set(record)
    variables = set(re.findall(r"\$context\.[A-Za-z.]+", log_format))
    assert not {v for v in variables if re.search(r"path|query|uri|domainPrefix|authorizer", v, re.IGNORECASE)}
    assert "$input" not in log_format


def test_every_route_is_throttled_on_its_own_and_launch_lowest(template: dict[str, Any]) -> None:
    """A flood of the unauthenticated Launch must not starve Install, Settings and Uninstall: each
    route has its own limits (route settings), Launch's lower by default; and its pending states are
    capped by its rate x their lifetime."""
    route_keys = {f"{route['Method']} {route['Path']}" for route in http_api_routes(template)}
    settings = template["Resources"]["HttpApi"]["Properties"]["RouteSettings"]
    assert set(settings) == route_keys, "a route without its own limits shares the stage's"
    parameters = template["Parameters"]

    def default(value: dict[str, str]) -> int:
        return int(parameters[value["Ref"]]["Default"])

    launch = settings["GET /launch"]
    for key, limits in settings.items():
        if key != "GET /launch":
            assert default(launch["ThrottlingRateLimit"]) < default(limits["ThrottlingRateLimit"]), key
            assert default(launch["ThrottlingBurstLimit"]) <= default(limits["ThrottlingBurstLimit"]), key
    pending_cap = default(launch["ThrottlingRateLimit"]) * int(parameters["OAuthStateTtlSeconds"]["Default"])
    assert pending_cap <= 10_000, f"up to {pending_cap} pending states at the Launch ceiling"


def test_url_outputs_end_in_their_route_path_on_both_domains(template: dict[str, Any]) -> None:
    # given each route (and the base URL, path ""), by its event name without "Route"
    paths = {route["event"].removesuffix("Route"): route["Path"] for route in http_api_routes(template)}
    for name, path in {"ApiBase": "", **paths}.items():
        # when its <name>Url output is read, an !If on HasPublicBaseUrl
        condition, custom, own = template["Outputs"][f"{name}Url"]["Value"]["Fn::If"]
        assert condition == "HasPublicBaseUrl"
        # then the custom-domain branch is PublicBaseUrl + path, the other the execute-api URL + path
        custom_text = custom["Ref"] if "Ref" in custom else sub_text(custom)
        assert custom_text == ("${PublicBaseUrl}" + path if path else "PublicBaseUrl"), name
        assert sub_text(own) == "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}" + path, name
    assert template["Conditions"]["HasPublicBaseUrl"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "PublicBaseUrl"}, ""]}]}


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("https://app.example.com", True),
        ("https://app.example.com:8443", True),
        ("https://App.example.com", False),
        ("https://app.example.com/", False),
        ("https://app.example.com/prefix", False),
        ("http://app.example.com", False),
    ],
)
def test_public_base_url_pattern(template: dict[str, Any], value: str, accepted: bool) -> None:
    # given the PublicBaseUrl pattern (lower case: Buy with Prime hashes the URL byte for byte)
    pattern = re.compile(template["Parameters"]["PublicBaseUrl"]["AllowedPattern"])
    # then only an https origin without path or trailing slash is accepted
    assert bool(pattern.fullmatch(value)) is accepted


# --------------------------------------------------------------------------- event pipeline


def test_partner_rule_forwards_buy_with_prime_events_only_to_the_queue_with_its_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    # given the partner rule, when its pattern is evaluated on Buy with Prime and foreign events and its
    # target followed to the queue and DLQ, then nothing is amiss
    assert rule_problems(template) == []


def test_partner_bus_is_named_after_its_event_source(template: dict[str, Any]) -> None:
    # given the partner bus, then its Name is its EventSourceName, and it exists in `create` mode only
    assert partner_bus_problems(template) == []
    # and the bus output names the bus the rule listens on, in both modes
    assert template["Outputs"]["PartnerEventBusName"]["Value"] == PARTNER_BUS_NAME


def test_sqs_event_sources_report_partial_failures_and_the_queue_outlasts_the_function(
    template: dict[str, Any],
) -> None:
    # given every SQS event source (there is one)
    assert event_source_queues(template), "no SQS event source: the check would be vacuous"
    # then each reports batch item failures, caps concurrency >= 2 and its queue's visibility is >= 6 x timeout
    assert sqs_event_source_problems(template) == []


def test_every_dead_letter_queue_keeps_messages_longer_than_its_queue(template: dict[str, Any]) -> None:
    assert dead_letter_queues(template), "no dead-letter queue: the check would be vacuous"
    assert retention_problems(template) == []


def test_queue_policy_lets_only_the_partner_rule_send_and_refuses_plain_http(template: dict[str, Any]) -> None:
    assert queue_policy_problems(template) == []
    assert insecure_transport_problems(template) == []
    # and the rule's permission exists exactly when the rule does
    statements = template["Resources"]["EventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    condition, _, otherwise = next(s for s in statements if "Fn::If" in s)["Fn::If"]
    assert condition == template["Resources"]["PartnerEventsRule"]["Condition"]
    assert otherwise == {"Ref": "AWS::NoValue"}


def test_alarms_cover_every_function_the_dead_letter_queue_and_the_backlog(template: dict[str, Any]) -> None:
    assert resources_of_type(template, "AWS::CloudWatch::Alarm"), "no alarm: the check would be vacuous"
    assert alarm_problems(template) == []


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use_for_it(template: dict[str, Any]) -> None:
    assert resources_of_type(template, "AWS::SNS::Topic"), "no topic: the check would be vacuous"
    assert topic_encryption_problems(template) == []


def _set(path: str, value: Any) -> Any:
    """A mutation that sets Resources.<path> (dot-separated; list indexes as numbers) to value."""

    def mutate(template: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = template["Resources"]
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if isinstance(node, list) else last] = value

    return mutate


_DELETE = object()
RULE = "PartnerEventsRule.Properties"
TARGET = f"{RULE}.Targets.0"
SQS_EVENT = "EventsFunction.Properties.Events.PartnerEventsQueue.Properties"
QUEUE_POLICY = "EventsQueuePolicy.Properties"
ALLOW_RULE = f"{QUEUE_POLICY}.PolicyDocument.Statement.0.Fn::If.1"


@pytest.mark.parametrize(
    ("check", "mutate", "expected"),
    [
        pytest.param(
            rule_problems,
            _set(f"{RULE}.EventPattern", {"source": [{"prefix": "aws.partner/"}]}),
            "forwards events from aws.partner/shopify.com",
            id="rule-forwards-every-partner",
        ),
        pytest.param(rule_problems, _set(f"{RULE}.EventPattern", _DELETE), "forwards events from", id="no-pattern"),
        pytest.param(
            rule_problems,
            _set(f"{RULE}.EventPattern.detail-type", ["ORDER_CONFIRMED", "REFUND_REQUESTED", "DELIVERY_COMPLETED"]),
            "drops a Buy with Prime SOMETHING_NEW event",
            id="rule-drops-new-event-types",
        ),
        pytest.param(
            rule_problems, _set(f"{RULE}.EventBusName", _DELETE), "must be the partner bus", id="rule-on-default-bus"
        ),
        pytest.param(
            rule_problems,
            _set(f"{TARGET}.DeadLetterConfig", _DELETE),
            "DeadLetterConfig.Arn must be",
            id="target-without-dlq",
        ),
        pytest.param(
            rule_problems,
            _set(f"{TARGET}.DeadLetterConfig.Arn", {"Fn::GetAtt": ["EventsQueue", "Arn"]}),
            "the dead-letter queue is the target queue itself",
            id="target-dlq-is-the-queue",
        ),
        pytest.param(
            rule_problems,
            lambda t: (
                t["Resources"].update(OtherQueue={"Type": "AWS::SQS::Queue", "Properties": {}}),
                _set("EventsQueue.Properties.RedrivePolicy.deadLetterTargetArn", {"Fn::GetAtt": ["OtherQueue", "Arn"]})(
                    t
                ),
            ),
            "redrives to ('OtherQueue', 'Arn'), not to the target's DLQ EventsDeadLetterQueue",
            id="queue-redrives-elsewhere",
        ),
        pytest.param(
            partner_bus_problems,
            _set("PartnerEventBus.Properties.Name", "buy-with-prime"),
            "!= EventSourceName",
            id="bus-name-differs-from-source",
        ),
        pytest.param(
            partner_bus_problems,
            _set("PartnerEventBus.Condition", "HasPartnerEventSource"),
            "Condition CreatePartnerBus",
            id="bus-created-in-existing-mode",
        ),
        pytest.param(
            sqs_event_source_problems,
            _set("EventsQueue.Properties.VisibilityTimeout", 300),
            "VisibilityTimeout 300 < 6 x Timeout 60",
            id="visibility-below-6x-timeout",
        ),
        pytest.param(
            sqs_event_source_problems,
            _set(f"{SQS_EVENT}.FunctionResponseTypes", _DELETE),
            "lacks ReportBatchItemFailures",
            id="no-partial-batch-response",
        ),
        pytest.param(
            sqs_event_source_problems,
            lambda t: t["Parameters"]["EventsMaxConcurrency"].update(MinValue=1),
            "MaximumConcurrency must be at least 2",
            id="concurrency-parameter-allows-1",
        ),
        pytest.param(
            sqs_event_source_problems,
            _set(f"{SQS_EVENT}.ScalingConfig", _DELETE),
            "MaximumConcurrency must be at least 2",
            id="no-concurrency-cap",
        ),
        pytest.param(
            sqs_event_source_problems,
            _set(f"{SQS_EVENT}.Queue", {"Ref": "EventsQueue"}),
            "Queue must be !GetAtt",
            id="event-source-queue-by-url",
        ),
        pytest.param(
            queue_policy_problems,
            _set(f"{ALLOW_RULE}.Condition.ArnEquals.aws:SourceArn", {"Fn::GetAtt": ["EventsFunction", "Arn"]}),
            "lets PartnerEventsRule (aws:SourceArn = its Arn) send to EventsQueue",
            id="policy-names-another-source",
        ),
        pytest.param(
            queue_policy_problems,
            _set(f"{QUEUE_POLICY}.Queues", [{"Ref": "EventsQueue"}]),
            "send to EventsDeadLetterQueue",
            id="policy-not-on-the-dlq",
        ),
        pytest.param(
            queue_policy_problems,
            _set(f"{ALLOW_RULE}.Condition", _DELETE),
            "an Allow statement without an aws:SourceArn condition",
            id="policy-open-to-any-rule",
        ),
        pytest.param(
            alarm_problems,
            lambda t: t["Resources"].pop("EventsFunctionErrorsAlarm"),
            "EventsFunction: no alarm on its first Errors",
            id="function-without-errors-alarm",
        ),
        pytest.param(
            alarm_problems,
            _set("EventsDeadLetterAlarm.Properties.Threshold", 5),
            "EventsDeadLetterQueue: no alarm on its first message",
            id="dlq-alarm-too-late",
        ),
        pytest.param(
            alarm_problems,
            lambda t: t["Resources"].pop("EventsQueueAgeAlarm"),
            "EventsQueue: no alarm on the age",
            id="no-backlog-alarm",
        ),
        pytest.param(
            alarm_problems,
            _set("OAuthFunctionErrorsAlarm.Properties.OKActions", []),
            "OAuthFunctionErrorsAlarm: OKActions notify no SNS topic",
            id="alarm-without-ok-action",
        ),
        pytest.param(
            topic_encryption_problems,
            _set("AlarmTopic.Properties.KmsMasterKeyId", "alias/aws/sns"),
            "KmsMasterKeyId must be",
            id="topic-on-aws-managed-key",
        ),
        pytest.param(
            topic_encryption_problems,
            _set("AlarmTopic.Properties.TopicName", {"Fn::Sub": "${AWS::StackName}-alerts"}),
            "does not let cloudwatch.amazonaws.com use it",
            id="key-policy-names-another-topic",
        ),
        pytest.param(
            retention_problems,
            _set("EventsDeadLetterQueue.Properties.MessageRetentionPeriod", 4 * 24 * 3600),
            "not longer than EventsQueue",
            id="dlq-keeps-no-longer-than-its-queue",
        ),
        pytest.param(
            insecure_transport_problems,
            _set(f"{QUEUE_POLICY}.PolicyDocument.Statement.1.Resource", [{"Fn::GetAtt": ["EventsQueue", "Arn"]}]),
            "EventsDeadLetterQueue does not refuse plain HTTP",
            id="dlq-accepts-plain-http",
        ),
    ],
)
def test_event_pipeline_checks_catch_breaks(template: dict[str, Any], check: Any, mutate: Any, expected: str) -> None:
    # given a copy of the template with one break in the pipeline
    broken = copy.deepcopy(template)
    mutate(broken)
    # when checked, then the break is reported
    problems = check(broken)
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("aws.partner/buywithprime/my-app-events", True),
        ("aws.partner/buywithprime/team.a/app_events-2", True),
        ("aws.partner/buywithprime/", False),
        ("aws.partner/shopify.com/123/default", False),
        ("my-app-events", False),
        ("aws.partner/buywithprime/my app", False),
    ],
)
def test_partner_event_source_name_pattern(template: dict[str, Any], value: str, accepted: bool) -> None:
    # given the PartnerEventSourceName pattern, then only empty or a Buy with Prime source is accepted
    pattern = re.compile(template["Parameters"]["PartnerEventSourceName"]["AllowedPattern"])
    assert bool(pattern.fullmatch(value)) is accepted


def test_sqs_sample_bodies_are_events_the_rule_forwards(template: dict[str, Any]) -> None:
    # given the rule's pattern and every SQS sample body that is an event (malformed samples are skipped)
    pattern = template["Resources"]["PartnerEventsRule"]["Properties"]["EventPattern"]
    events = []
    for name, sample in sqs_sample_events().items():
        for record in sample["Records"]:
            try:
                body = json.loads(record["body"])
            except json.JSONDecodeError:
                continue
            if isinstance(body, dict) and "source" in body:
                events.append((name, body))
    assert events, "no SQS sample carries an EventBridge event"
    # then the rule would have forwarded each of them: the samples are what the queue really receives
    for name, event in events:
        assert pattern_matches(pattern, event), f"{name}: the rule would not forward {event['source']}"


# --------------------------------------------------------------------------- storage and secrets


def test_the_table_has_the_keys_and_indexes_the_code_queries(template: dict[str, Any]) -> None:
    # given the table as the stack creates it (kept when the stack goes: tests/test_template_adoption.py)
    spec = dynamodb_table_spec(template)
    # then its keys and TTL attribute are the code's (shared/store/keys.py)
    assert (spec["hash_key"], spec["range_key"], spec["ttl_attribute"]) == (PK, SK, TTL_ATTRIBUTE)
    # and the two indexes (the sweep's, the tenant purge's) are keyed as the code queries them, keys only
    attributes = {a["AttributeName"]: a["AttributeType"] for a in spec["AttributeDefinitions"]}
    assert attributes == {PK: "S", SK: "S", SWEEP_SHARD: "S", SWEEP_HOUR: "N", TENANT: "S"}
    indexes = {i["IndexName"]: i for i in spec["GlobalSecondaryIndexes"]}
    keys = {name: [(k["AttributeName"], k["KeyType"]) for k in i["KeySchema"]] for name, i in indexes.items()}
    assert keys == {SWEEP_INDEX: [(SWEEP_SHARD, "HASH"), (SWEEP_HOUR, "RANGE")], TENANT_INDEX: [(TENANT, "HASH")]}
    assert all(i["Projection"] == {"ProjectionType": "KEYS_ONLY"} for i in indexes.values())


def test_the_client_credentials_secret_holds_what_the_code_reads_and_no_value(own_table: dict[str, Any]) -> None:
    from shared.credentials import PLACEHOLDER_CLIENT_ID
    from shared.models import ClientCredentials

    # given the secret as created (a client_id placeholder, a generated client_secret)
    properties = own_table["Resources"]["ClientCredentialsSecret"]["Properties"]
    assert "SecretString" not in properties, "a literal secret value in the template"
    generated = properties["GenerateSecretString"]
    created = {**json.loads(generated["SecretStringTemplate"]), generated["GenerateStringKey"]: "generated"}
    # and the JSON the PutClientCredentialsCommand output tells the operator to store, in that secret
    words = shlex.split(sub_text(own_table["Outputs"]["PutClientCredentialsCommand"]["Value"]))
    command = json.loads(words[words.index("--secret-string") + 1])
    assert words[words.index("--secret-id") + 1] == "${ClientCredentialsSecret}"
    # then both are the shape the code reads (shared/credentials.py), with placeholders only, and the
    # created one carries the placeholder the code refuses with "put the real credentials in"
    for shape in (created, command):
        ClientCredentials.model_validate(shape)
    assert set(created) == set(command)
    assert created["client_id"] == PLACEHOLDER_CLIENT_ID
    assert {command["client_id"], command["client_secret"]} <= PLACEHOLDERS


def test_no_parameter_is_named_or_flagged_like_a_secret(template: dict[str, Any]) -> None:
    # given the template parameters, then none could carry the client credentials
    for name, parameter in template["Parameters"].items():
        assert not SECRET_LIKE_NAME.search(name), f"parameter {name} looks like a secret: use the secret instead"
        assert not parameter.get("NoEcho"), f"parameter {name} is NoEcho: secrets belong in Secrets Manager"


@pytest.mark.parametrize("path", [TEMPLATE_PATH, SAMCONFIG_PATH], ids=lambda p: p.name)
def test_files_contain_no_credentials(path: Path) -> None:
    # given the file's text, when scanned for credential-like strings, then none is found
    assert secret_problems(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "leak",
    [
        'SecretStringTemplate: \'{"client_id": "x", "client_secret": "s3cr3t-value"}\'',
        "Token: Atzr|IwEBIJ4x",
        "X: eyJhbGciOiJFUzI1NiJ9.eyJpbnN0YWxsYXRpb25JZCI6IjEifQ.c2ln",
        "ClientSecret: amzn1.oa2-cs.v1.0123456789abcdef",
        "Key: AKIAABCDEFGHIJKLMNOP",
        "Opaque: 9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928",
    ],
    ids=["client-secret-json", "lwa-refresh-token", "jwt", "lwa-client-secret", "aws-key", "opaque"],
)
def test_credential_scan_catches_leaks(leak: str) -> None:
    # given the template text with a credential pasted in, when scanned, then it is reported
    assert secret_problems(TEMPLATE_PATH.read_text(encoding="utf-8") + "\n" + leak + "\n")


# --------------------------------------------------------------------------- samconfig.toml


def test_samconfig_overrides_name_template_parameters_with_allowed_values(
    template: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    # given every parameter_overrides of samconfig.toml
    overrides = 0
    for environment_name, config in samconfig.items():
        if not isinstance(config, dict):
            continue
        for command, section in config.items():
            text = section.get("parameters", {}).get("parameter_overrides")
            if not text:
                continue
            for name, value in parameter_overrides(text).items():
                # then it names a template parameter, accepts the value, and is no secret
                overrides += 1
                where = f"{environment_name}.{command}: {name}"
                assert name in template["Parameters"], f"{where} is not a template parameter"
                assert not SECRET_LIKE_NAME.search(name), where
                parameter = template["Parameters"][name]
                if "AllowedValues" in parameter:
                    assert value in {str(v) for v in parameter["AllowedValues"]}, f"{where}={value} not allowed"
                if "AllowedPattern" in parameter:
                    assert re.fullmatch(parameter["AllowedPattern"], value), f"{where}={value} does not match"
    assert overrides, "no parameter_overrides in samconfig.toml: the check would be vacuous"
