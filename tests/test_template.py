"""Checks on template.yaml and samconfig.toml that `cfn-lint` and `sam validate --lint` do not make.

Lint does not catch a bad Runtime on AWS::Serverless::Function, a handler that points at nothing, a
misspelled logical ID inside a policy template or an event source, routes drifting from the sample
events, secrets pasted into the template, an event rule that forwards everything on the bus, a queue
policy that names the wrong rule, or a dead-letter path that leads nowhere. These tests do. Where a
check is a function (`*_problems`), a test also feeds it a deliberately broken copy of the template,
to prove it can fail.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from devtools.local_invoke import function_for
from devtools.template import (
    PROJECT_ROOT,
    TEMPLATE_PATH,
    dynamodb_table_spec,
    load_template,
    resolve_conditions,
    resources_of_type,
)
from shared.store.keys import SWEEP_HOUR, SWEEP_INDEX, SWEEP_SHARD, TENANT, TENANT_INDEX

SAMCONFIG_PATH = PROJECT_ROOT / "samconfig.toml"
EVENTS_DIR = PROJECT_ROOT / "events"
SWEEP_SAMPLE = EVENTS_DIR / "sweep.json"

FUNCTION = "AWS::Serverless::Function"
PSEUDO_PARAMETERS = {
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
}

# The app lifecycle URLs Buy with Prime calls, plus a health check: (event logical ID, method, path).
LIFECYCLE_ROUTES = {
    ("LaunchRoute", "GET", "/launch"),
    ("InstallRoute", "GET", "/install"),
    ("SettingsRoute", "GET", "/settings"),
    ("UninstallRoute", "POST", "/uninstall"),
    ("HealthRoute", "GET", "/health"),
}

# OAuthFunction's own environment: exactly these variables, each bound to this resource/parameter.
OAUTH_ENVIRONMENT = {
    "TABLE_NAME": {"Ref": "InstallationsTable"},
    "CLIENT_CREDENTIALS_SECRET_ARN": {"Ref": "ClientCredentialsSecret"},
    "BWP_AUTHORIZE_URL": {"Ref": "BwpAuthorizeUrl"},
    "BWP_TOKEN_URL": {"Ref": "BwpTokenUrl"},
    "BWP_GRAPHQL_URL": {"Ref": "BwpGraphqlUrl"},
    "BWP_VERIFICATION_PUBLIC_KEY": {"Ref": "BwpVerificationPublicKey"},
    "PUBLIC_BASE_URL": {"Ref": "PublicBaseUrl"},
    "BWP_API_VERSION": {"Ref": "BwpApiVersion"},
    "POST_INSTALL_REDIRECT_URL": {"Ref": "PostInstallRedirectUrl"},
    "APP_NAME": {"Ref": "AppName"},
    "PARTNER_APP_URL": {"Ref": "PartnerAppUrl"},
    "SESSION_SIGNING_SECRET_ARN": {"Fn::If": ["HasPartnerAppUrl", {"Ref": "SessionSigningSecret"}, ""]},
    "OAUTH_STATE_TTL_SECONDS": {"Ref": "OAuthStateTtlSeconds"},
    "MAX_VERIFICATION_TOKEN_AGE_SECONDS": {"Ref": "MaxVerificationTokenAgeSeconds"},
    "REQUIRE_VERIFICATION_TOKEN_TIMES": {"Ref": "RequireVerificationTokenTimes"},
}

# EventsFunction's own environment: exactly these variables (names shared with shared/settings.py).
EVENTS_ENVIRONMENT = {
    "TABLE_NAME": {"Ref": "InstallationsTable"},
    "CLIENT_CREDENTIALS_SECRET_ARN": {"Ref": "ClientCredentialsSecret"},
    "BWP_TOKEN_URL": {"Ref": "BwpTokenUrl"},
    "BWP_GRAPHQL_URL": {"Ref": "BwpGraphqlUrl"},
    "BWP_API_VERSION": {"Ref": "BwpApiVersion"},
    "EVENT_RECORD_RETENTION_DAYS": {"Ref": "EventRecordRetentionDays"},
    "HYDRATION_MAX_WORKERS": "10",
    "REHYDRATE_OPEN_ORDERS_HOURS": {"Ref": "RehydrateOpenOrdersHours"},  # on: open-order markers
    "EVENTS_QUEUE_URL": {"Ref": "EventsQueue"},
}

# Item-level access only; TransactWriteItems is authorised per item action (no IAM action of its own).
EVENTS_TABLE_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
}

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

OAUTH_TABLE_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
}

# The EC P-256 key Buy with Prime published (public, hence allowed in the template).
PUBLISHED_KEY_BODY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9NrnQefbdiD4Tk65eY2r/fXtf4VV"
    "PIBdR7qP73NhRBdNhUNfERayW67OP+ufvhpgdWUcbxXQkos8KkwL8yRMzQ=="
)

# GetAtt attributes that exist, per resource type (extend when a new type is referenced).
KNOWN_ATTRIBUTES = {
    "AWS::DynamoDB::Table": {"Arn", "StreamArn"},
    "AWS::SQS::Queue": {"Arn", "QueueName", "QueueUrl"},
    "AWS::SNS::Topic": {"TopicArn", "TopicName"},
    "AWS::Events::EventBus": {"Arn", "Name"},
    "AWS::Events::Rule": {"Arn"},
    "AWS::Logs::LogGroup": {"Arn"},
    "AWS::SecretsManager::Secret": {"Id"},
    "AWS::KMS::Key": {"Arn", "KeyId"},
    "AWS::S3::Bucket": {"Arn"},
    "AWS::Kinesis::Stream": {"Arn"},
    "AWS::Serverless::Function": {"Arn"},
    "AWS::Lambda::Function": {"Arn"},
    "AWS::Serverless::HttpApi": {"ApiEndpoint"},
}

# Policy template -> {argument: (resource types, how it must be referenced)}. Only scoped templates
# are listed: an unlisted one (or a managed policy name) is reported, to be reviewed before use.
POLICY_TEMPLATE_ARGUMENTS: dict[str, dict[str, tuple[tuple[str, ...], str]]] = {
    "AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": (("AWS::SecretsManager::Secret",), "Ref")},
    "DynamoDBReadPolicy": {"TableName": (("AWS::DynamoDB::Table",), "Ref")},
    "DynamoDBWritePolicy": {"TableName": (("AWS::DynamoDB::Table",), "Ref")},
    "DynamoDBCrudPolicy": {"TableName": (("AWS::DynamoDB::Table",), "Ref")},
    "SQSSendMessagePolicy": {"QueueName": (("AWS::SQS::Queue",), "GetAtt.QueueName")},
    "SQSPollerPolicy": {"QueueName": (("AWS::SQS::Queue",), "GetAtt.QueueName")},
    "EventBridgePutEventsPolicy": {"EventBusName": (("AWS::Events::EventBus",), "Ref")},
    "SNSPublishMessagePolicy": {"TopicName": (("AWS::SNS::Topic",), "GetAtt.TopicName")},
    "LambdaInvokePolicy": {"FunctionName": (("AWS::Serverless::Function", "AWS::Lambda::Function"), "Ref")},
    "KMSDecryptPolicy": {"KeyId": (("AWS::KMS::Key",), "Ref")},
}

# (event type, property) -> (resource types, how it must be referenced).
EVENT_SOURCE_PROPERTIES: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("HttpApi", "ApiId"): (("AWS::Serverless::HttpApi",), "Ref"),
    ("SQS", "Queue"): (("AWS::SQS::Queue",), "GetAtt.Arn"),
    ("DynamoDB", "Stream"): (("AWS::DynamoDB::Table",), "GetAtt.StreamArn"),
    ("Kinesis", "Stream"): (("AWS::Kinesis::Stream",), "GetAtt.Arn"),
    ("SNS", "Topic"): (("AWS::SNS::Topic",), "Ref"),
    ("EventBridgeRule", "EventBusName"): (("AWS::Events::EventBus",), "Ref"),
}

SECRET_LIKE_NAME = re.compile(
    r"secret|passw(or)?d|credential|private_?key|(access|refresh|bearer|auth)_?token|api_?key|client_?id",
    re.IGNORECASE,
)

# Placeholder values allowed where a client secret would go.
PLACEHOLDERS = {"...", "REPLACE_ME"}


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


def reference_problem(template: dict[str, Any], kind: str, name: str, attribute: str | None) -> str | None:
    """Why a Ref/GetAtt/Sub reference is wrong, or None."""
    resources = template.get("Resources", {})
    target = name.split(".", 1)[0] if kind == "Sub" else name
    known = set(resources) | PSEUDO_PARAMETERS | (set(template.get("Parameters", {})) if kind != "GetAtt" else set())
    label = {"Ref": f"!Ref {name}", "Sub": f"${{{name}}} in !Sub", "GetAtt": f"!GetAtt {name}.{attribute}"}[kind]
    problem = None
    if target not in known:
        problem = f"{label}: no such resource" + (" or parameter" if kind != "GetAtt" else "")
    elif kind == "GetAtt":
        resource_type = resources[name]["Type"]
        if resource_type not in KNOWN_ATTRIBUTES:
            problem = f"{label}: {resource_type} unknown to KNOWN_ATTRIBUTES (extend it)"
        elif attribute not in KNOWN_ATTRIBUTES[resource_type]:
            problem = f"{label}: {resource_type} has no attribute {attribute}"
    return problem


def expected_reference_problem(
    template: dict[str, Any], where: str, value: Any, expected: tuple[tuple[str, ...], str]
) -> str | None:
    """Check that value is the expected kind of reference to a resource of the expected type."""
    resource_types, form = expected
    resources = template.get("Resources", {})
    if form == "Ref":
        target = value.get("Ref") if isinstance(value, dict) else None
    else:
        getatt = value.get("Fn::GetAtt") if isinstance(value, dict) else None
        getatt = getatt.split(".", 1) if isinstance(getatt, str) else getatt
        target = getatt[0] if getatt else None
        if getatt and f"GetAtt.{getatt[1]}" != form:
            return f"{where}: must be !GetAtt <{'|'.join(resource_types)}>.{form.split('.', 1)[1]}, got {value!r}"
    if target is None:
        return f"{where}: must be a {form} to a {'/'.join(resource_types)} of this template, got {value!r}"
    if target not in resources:
        return f"{where}: {target} is not a resource of this template"
    if resources[target]["Type"] not in resource_types:
        return f"{where}: {target} is a {resources[target]['Type']}, expected {'/'.join(resource_types)}"
    return None


def dangling_references(template: dict[str, Any], node: Any) -> list[str]:
    problems = (reference_problem(template, *reference) for reference in iter_references(node))
    return [problem for problem in problems if problem]


def policy_problems(template: dict[str, Any], function_id: str, policies: Any) -> list[str]:
    problems: list[str | None] = []
    for index, policy in enumerate(policies if isinstance(policies, list) else [policies]):
        where = f"{function_id}.Policies[{index}]"
        if isinstance(policy, str):
            problems.append(f"{where}: managed policy {policy!r} (use a scoped template or statement)")
            continue
        if "Statement" not in policy:
            for template_name, arguments in policy.items():
                if template_name not in POLICY_TEMPLATE_ARGUMENTS:
                    problems.append(f"{where}: policy template {template_name} not reviewed (extend the map)")
                    continue
                for argument, expected in POLICY_TEMPLATE_ARGUMENTS[template_name].items():
                    value = (arguments or {}).get(argument)
                    problems.append(expected_reference_problem(template, f"{where}.{argument}", value, expected))
        problems.extend(f"{where}: {problem}" for problem in dangling_references(template, policy))
    return [problem for problem in problems if problem]


def event_problems(template: dict[str, Any], function_id: str, events: dict[str, Any]) -> list[str]:
    problems: list[str | None] = []
    for event_id, event in events.items():
        where = f"{function_id}.Events.{event_id}"
        properties = event.get("Properties", {})
        for (event_type, prop), expected in EVENT_SOURCE_PROPERTIES.items():
            if event.get("Type") == event_type and prop in properties:
                problems.append(expected_reference_problem(template, f"{where}.{prop}", properties[prop], expected))
        problems.extend(f"{where}: {problem}" for problem in dangling_references(template, event))
    return [problem for problem in problems if problem]


def reference_problems(template: dict[str, Any]) -> list[str]:
    """Dangling or ill-typed references inside functions' Policies and Events."""
    problems = []
    for function_id, function in functions(template).items():
        properties = function.get("Properties", {})
        problems += policy_problems(template, function_id, properties.get("Policies", []))
        problems += event_problems(template, function_id, properties.get("Events", {}))
    return problems


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


def wildcard_problems(template: dict[str, Any]) -> list[str]:
    """Allow statements: Action and Resource, no wildcard, no NotAction/NotResource. A Deny may use
    NotResource ("deny everywhere but here"), the one way to narrow a managed policy SAM attaches."""
    problems = []
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
    if target.get("RetryPolicy") != {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}:
        problems.append(f"{where}: RetryPolicy must be EventBridge's maximum (185 attempts, 24 h)")
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


def test_loader_reads_the_project_template(template: dict[str, Any]) -> None:
    # given the project template, when loaded, then it is a SAM template with resources
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert template["Resources"]


# --------------------------------------------------------------------------- functions


def test_every_function_runs_python313_on_arm64(template: dict[str, Any]) -> None:
    # given every SAM function of the template
    assert functions(template), "the template defines no AWS::Serverless::Function"
    for logical_id in functions(template):
        # when its effective runtime and architectures are read (own property or Globals)
        runtime = function_setting(template, logical_id, "Runtime")
        architectures = function_setting(template, logical_id, "Architectures")
        # then they are python3.13 and arm64
        assert runtime == "python3.13", f"{logical_id}: Runtime {runtime!r}"
        assert architectures == ["arm64"], f"{logical_id}: Architectures {architectures!r}"


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


def test_functions_behind_the_http_api_time_out_before_api_gateway(template: dict[str, Any]) -> None:
    # given the functions serving HTTP API routes (API Gateway HTTP API gives up after 30 s)
    behind_api = {route["function"] for route in http_api_routes(template)}
    assert behind_api
    for logical_id in behind_api:
        # when their effective timeout is read, then it is below 30 s
        timeout = function_setting(template, logical_id, "Timeout")
        assert isinstance(timeout, int), f"{logical_id}: Timeout {timeout!r}"
        assert timeout < 30, f"{logical_id}: Timeout {timeout} s >= API Gateway's 30 s"


def test_oauth_function_environment_is_exactly_the_operator_variables(own_table: dict[str, Any]) -> None:
    # given the OAuth function's own environment
    variables = own_table["Resources"]["OAuthFunction"]["Properties"]["Environment"]["Variables"]
    # then it holds exactly the operator variables, each bound to its resource or parameter
    assert set(variables) == set(OAUTH_ENVIRONMENT)
    assert variables == OAUTH_ENVIRONMENT
    for binding in variables.values():
        refs = [binding] if "Ref" in binding else [v for v in binding["Fn::If"][1:] if isinstance(v, dict)]
        for ref in refs:
            assert ref["Ref"] in own_table["Resources"] or ref["Ref"] in own_table["Parameters"]


def test_globals_configure_powertools(template: dict[str, Any]) -> None:
    # given the global function environment
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    # then Powertools gets a service name, a metrics namespace and the LogLevel parameter
    assert set(variables) == {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    assert variables["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "BuyWithPrimeIntegration"


def test_lambda_application_log_level_follows_the_log_level_parameter(template: dict[str, Any]) -> None:
    # given the LogLevel parameter and the mapping used for Lambda's ApplicationLogLevel
    allowed = template["Parameters"]["LogLevel"]["AllowedValues"]
    mapping = template["Mappings"]["LogLevels"]
    logging_config = template["Resources"]["OAuthFunction"]["Properties"]["LoggingConfig"]
    # then every allowed value maps to a Lambda level, and the function uses that mapping
    assert set(mapping) == set(allowed)
    assert {entry["Lambda"] for entry in mapping.values()} <= {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
    assert logging_config["LogFormat"] == "JSON"
    assert logging_config["ApplicationLogLevel"] == {"Fn::FindInMap": ["LogLevels", {"Ref": "LogLevel"}, "Lambda"]}


def test_every_function_has_a_log_group_with_retention(template: dict[str, Any]) -> None:
    # given the log groups of the template, by name
    log_groups = {
        sub_text(group["Properties"]["LogGroupName"]): group
        for group in resources_of_type(template, "AWS::Logs::LogGroup").values()
    }
    for logical_id in functions(template):
        # then each function's /aws/lambda/<name> group exists and keeps logs LogRetentionDays
        group = log_groups.get(f"/aws/lambda/${{{logical_id}}}")
        assert group, f"{logical_id}: no AWS::Logs::LogGroup named !Sub /aws/lambda/${{{logical_id}}}"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


# --------------------------------------------------------------------------- references


def test_references_in_policies_and_events_name_existing_resources(own_table: dict[str, Any]) -> None:
    # given the template, when every Ref/GetAtt/Sub in Policies and Events is resolved
    problems = reference_problems(own_table)
    # then none dangles or points at the wrong kind of resource
    assert problems == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda t: t["Resources"]["OAuthFunction"]["Properties"]["Policies"].append(
                {"DynamoDBReadPolicy": {"TableName": {"Ref": "InstalationsTable"}}}
            ),
            "InstalationsTable is not a resource",
            id="typo-in-policy-template",
        ),
        pytest.param(
            lambda t: t["Resources"]["OAuthFunction"]["Properties"]["Policies"].append(
                {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "InstallationsTable"}}}
            ),
            "expected AWS::SecretsManager::Secret",
            id="policy-template-on-wrong-resource-type",
        ),
        pytest.param(
            lambda t: t["Resources"]["OAuthFunction"]["Properties"]["Policies"][1]["Statement"][0].update(
                Resource={"Fn::GetAtt": ["InstallationsTable", "Arnn"]}
            ),
            "has no attribute Arnn",
            id="bad-getatt-attribute-in-statement",
        ),
        pytest.param(
            lambda t: t["Resources"]["OAuthFunction"]["Properties"]["Events"]["LaunchRoute"]["Properties"].update(
                ApiId={"Ref": "HttpAPI"}
            ),
            "HttpAPI is not a resource",
            id="typo-in-event-api-id",
        ),
        pytest.param(
            lambda t: (
                t["Resources"].update(Queue={"Type": "AWS::SQS::Queue", "Properties": {}}),
                t["Resources"]["OAuthFunction"]["Properties"]["Events"].update(
                    Q={"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["Queue", "QueueUrl"]}}}
                ),
            ),
            "must be !GetAtt <AWS::SQS::Queue>.Arn",
            id="sqs-event-source-not-an-arn",
        ),
        pytest.param(
            lambda t: t["Resources"]["OAuthFunction"]["Properties"]["Policies"].append("AmazonDynamoDBFullAccess"),
            "managed policy",
            id="broad-managed-policy",
        ),
    ],
)
def test_reference_check_catches_broken_references(template: dict[str, Any], mutate: Any, expected: str) -> None:
    # given a copy of the template with one broken reference
    broken = copy.deepcopy(template)
    mutate(broken)
    # when checked, then the break is reported
    problems = reference_problems(broken)
    assert any(expected in problem for problem in problems), problems


# --------------------------------------------------------------------------- IAM


def test_iam_statements_have_no_wildcards(template: dict[str, Any]) -> None:
    # given every inline IAM statement, then none uses '*' in Action or Resource
    assert list(iam_statements(template)), "no inline statement found: the check would be vacuous"
    assert wildcard_problems(template) == []


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": {"Fn::GetAtt": ["InstallationsTable", "Arn"]}},
        {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": {"Fn::Sub": "${InstallationsTable.Arn}/*"}},
        {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "arn:aws:s3:::b"},
        {"Effect": "Allow", "Action": ["sqs:ReceiveMessage"], "NotResource": "arn:aws:sqs:us-east-1:1:q"},
        {"Effect": "Deny", "Action": ["sqs:ReceiveMessage"], "NotResource": {"Fn::Sub": "${EventsQueue.Arn}*"}},
    ],
    ids=["action-wildcard", "resource-star", "resource-sub-wildcard", "not-action", "allow-not-resource", "deny-wild"],
)
def test_wildcard_check_catches_wildcards(template: dict[str, Any], statement: dict[str, Any]) -> None:
    # given a copy of the template with a broad statement added, when checked, then it is reported
    broken = copy.deepcopy(template)
    broken["Resources"]["OAuthFunction"]["Properties"]["Policies"].append(
        {"Version": "2012-10-17", "Statement": [statement]}
    )
    assert wildcard_problems(broken)


def test_oauth_function_gets_exactly_item_level_access_to_the_table_and_read_access_to_the_secret(
    own_table: dict[str, Any],
) -> None:
    # given the OAuth function's policies
    policies = own_table["Resources"]["OAuthFunction"]["Properties"]["Policies"]
    statements = [statement for policy in policies if "Statement" in policy for statement in policy["Statement"]]
    templates = [policy for policy in policies if "Statement" not in policy]
    # then the table statement allows exactly the five item actions on the table ARN (no Scan/Batch)
    table_statements = [s for s in statements if s.get("Resource") == {"Fn::GetAtt": ["InstallationsTable", "Arn"]}]
    assert len(table_statements) == 1
    assert table_statements[0]["Effect"] == "Allow"
    assert set(table_statements[0]["Action"]) == OAUTH_TABLE_ACTIONS
    all_actions = {action for s in statements for action in strings_in(s.get("Action"))}
    assert not {a for a in all_actions if "Scan" in a or "Batch" in a}
    # and the secret is readable through the scoped policy template only
    assert templates == [{"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "ClientCredentialsSecret"}}}]


# --------------------------------------------------------------------------- HTTP API


def test_http_api_routes_are_exactly_the_lifecycle_routes_on_the_oauth_function(template: dict[str, Any]) -> None:
    # given every HttpApi event of the template
    routes = http_api_routes(template)
    # then they are exactly the five lifecycle routes, payload 2.0, all on OAuthFunction and HttpApi
    assert {(route["event"], route["Method"], route["Path"]) for route in routes} == LIFECYCLE_ROUTES
    assert len(routes) == len(LIFECYCLE_ROUTES)
    for route in routes:
        assert route["function"] == "OAuthFunction", route
        assert route["ApiId"] == {"Ref": "HttpApi"}, route
        assert route["PayloadFormatVersion"] == "2.0", route
    assert template["Resources"]["HttpApi"]["Type"] == "AWS::Serverless::HttpApi"


@pytest.mark.parametrize(("event_id", "method", "path"), sorted(LIFECYCLE_ROUTES))
def test_every_route_has_a_matching_sample_event(event_id: str, method: str, path: str) -> None:
    # given the sample events in events/, by routeKey
    samples = sample_events()
    route_key = f"{method} {path}"
    # when the route's sample is looked up
    assert route_key in samples, f"no events/*.json with routeKey {route_key!r} (for {event_id})"
    sample_path, sample = samples[route_key]
    # then it is an HTTP API payload 2.0 event for that method and path
    assert sample.get("version") == "2.0", sample_path
    assert sample["rawPath"] == path, sample_path
    assert sample["requestContext"]["http"]["method"] == method, sample_path
    assert sample["requestContext"].get("routeKey", route_key) == route_key, sample_path
    assert sample["requestContext"]["http"].get("path", path) == path, sample_path


def test_no_sample_event_targets_a_route_the_template_lacks(template: dict[str, Any]) -> None:
    # given the routes of the template and the sample events
    route_keys = {f"{route['Method']} {route['Path']}" for route in http_api_routes(template)}
    # then every sample with a routeKey names one of those routes
    assert set(sample_events()) <= route_keys


def test_http_api_is_throttled_and_access_logs_carry_no_query_string(template: dict[str, Any]) -> None:
    # given the HTTP API
    properties = template["Resources"]["HttpApi"]["Properties"]
    # then the default route is throttled by the parameters
    assert properties["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
    }
    assert "StageName" not in properties, "the $default stage (no StageName) keeps the URLs free of a stage prefix"
    # and the access log is JSON without any path/query variable (the OAuth code and tokens ride in the query)
    settings = properties["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    log_format = settings["Format"]
    record = json.loads(log_format)
    assert {"requestId", "routeKey", "status", "responseLatency", "integrationErrorMessage"} <= set(record)
    variables = set(re.findall(r"\$context\.[A-Za-z.]+", log_format))
    assert not {v for v in variables if re.search(r"path|query|uri|domainPrefix|authorizer", v, re.IGNORECASE)}
    assert "$input" not in log_format
    access_group = template["Resources"]["HttpApiAccessLogGroup"]
    assert access_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


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


def test_sqs_event_sources_report_partial_failures_and_the_queue_outlasts_the_function(
    template: dict[str, Any],
) -> None:
    # given every SQS event source (there is one)
    sources = [
        event
        for function in functions(template).values()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS"
    ]
    assert sources, "no SQS event source: the check would be vacuous"
    # then each reports batch item failures, caps concurrency >= 2 and its queue's visibility is >= 6 x timeout
    assert sqs_event_source_problems(template) == []


def test_queue_policy_lets_only_the_partner_rule_send_to_the_queue_and_the_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    assert queue_policy_problems(template) == []


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
            rule_problems, _set(f"{TARGET}.RetryPolicy.MaximumRetryAttempts", 0), "RetryPolicy", id="no-retries"
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
    ],
)
def test_event_pipeline_checks_catch_breaks(template: dict[str, Any], check: Any, mutate: Any, expected: str) -> None:
    # given a copy of the template with one break in the pipeline
    broken = copy.deepcopy(template)
    mutate(broken)
    # when checked, then the break is reported
    problems = check(broken)
    assert any(expected in problem for problem in problems), problems


def test_event_queues_are_encrypted_and_the_dead_letter_queue_keeps_messages_longest(
    template: dict[str, Any],
) -> None:
    # given the events queue and its dead-letter queue
    queue = template["Resources"]["EventsQueue"]["Properties"]
    dlq = template["Resources"]["EventsDeadLetterQueue"]["Properties"]
    # then both are encrypted, a message goes to the DLQ after 5 receives
    assert queue["SqsManagedSseEnabled"] is True
    assert dlq["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 10
    # and the DLQ keeps messages 14 days, longer than the queue (a moved message keeps its enqueue time)
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["MessageRetentionPeriod"] == 4 * 24 * 3600
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]


def test_events_function_environment_is_exactly_the_pipeline_variables(own_table: dict[str, Any]) -> None:
    # given the events function's own environment
    variables = own_table["Resources"]["EventsFunction"]["Properties"]["Environment"]["Variables"]
    # then it holds exactly the pipeline variables, each bound to its resource, parameter or value
    assert variables == EVENTS_ENVIRONMENT


def test_every_function_variable_is_one_its_code_reads(template: dict[str, Any]) -> None:
    # given the variable names shared/settings.py reads
    from shared.settings import ENVIRONMENT_VARIABLES

    for logical_id, function in functions(template).items():
        # and the handler package's own source (the example consumer reads its variable itself)
        package = str(function["Properties"]["Handler"]).split(".")[0]
        source = "".join(p.read_text() for p in (PROJECT_ROOT / "src" / package).glob("*.py"))
        # then every (non-Powertools) variable the template sets is read: no typo goes unread
        names = set(function["Properties"].get("Environment", {}).get("Variables", {}))
        unknown = {name for name in names if not name.startswith("POWERTOOLS_")} - set(ENVIRONMENT_VARIABLES.values())
        unread = {name for name in unknown if f'os.environ["{name}"]' not in source}
        assert not unread, f"{logical_id} sets variables its code never reads: {sorted(unread)}"


def test_events_function_gets_item_level_table_access_and_no_queue_but_its_own(own_table: dict[str, Any]) -> None:
    # given the events function's policies
    properties = own_table["Resources"]["EventsFunction"]["Properties"]
    policies = properties["Policies"]
    statements = [statement for policy in policies if "Statement" in policy for statement in policy["Statement"]]
    templates = [policy for policy in policies if "Statement" not in policy]
    # then the table statement allows exactly the item actions the pipeline uses, on the table ARN (no Scan)
    table = [s for s in statements if s.get("Resource") == {"Fn::GetAtt": ["InstallationsTable", "Arn"]}]
    assert len(table) == 1
    assert table[0]["Effect"] == "Allow"
    assert set(table[0]["Action"]) == EVENTS_TABLE_ACTIONS
    # and the secret is readable through the scoped policy template only
    assert templates == [{"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "ClientCredentialsSecret"}}}]
    # and SAM's AWSLambdaSQSQueueExecutionRole (every queue) is cut down to the event source's queue
    denies = [s for s in statements if s.get("Effect") == "Deny"]
    assert len(denies) == 1
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= set(denies[0]["Action"])
    assert denies[0]["NotResource"] == properties["Events"]["PartnerEventsQueue"]["Properties"]["Queue"]
    # and it may delay the records it sends back, on its own queue only
    delay = [s for s in statements if s.get("Sid") == "DelayRecordsSentBack"]
    assert delay == [
        {
            "Sid": "DelayRecordsSentBack",
            "Effect": "Allow",
            "Action": "sqs:ChangeMessageVisibility",
            "Resource": {"Fn::GetAtt": ["EventsQueue", "Arn"]},
        }
    ]
    # and nothing else is allowed
    assert [s for s in statements if s.get("Effect") == "Allow"] == table + delay


def test_events_function_batches_and_retention_come_from_the_parameters(template: dict[str, Any]) -> None:
    # given the events function and its SQS event source
    properties = template["Resources"]["EventsFunction"]["Properties"]
    source = properties["Events"]["PartnerEventsQueue"]["Properties"]
    # then batch size, batching window and concurrency are the operator's parameters
    assert source["BatchSize"] == {"Ref": "EventBatchSize"}
    assert source["MaximumBatchingWindowInSeconds"] == {"Ref": "EventBatchWindowSeconds"}
    assert source["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "EventsMaxConcurrency"}}
    # and it logs like the OAuth function (JSON, Lambda level mapped from LogLevel)
    assert properties["LoggingConfig"] == template["Resources"]["OAuthFunction"]["Properties"]["LoggingConfig"]
    assert properties["Timeout"] == 60


def test_queue_policy_refuses_plain_http(template: dict[str, Any]) -> None:
    # given the queue policy, then it denies every request without TLS on both queues
    statements = template["Resources"]["EventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    denies = [s for s in statements if "Fn::If" not in s and s["Effect"] == "Deny"]
    assert denies == [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": [{"Fn::GetAtt": ["EventsQueue", "Arn"]}, {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    # and the rule's permission exists exactly when the rule does
    allow = next(s for s in statements if "Fn::If" in s)["Fn::If"]
    assert allow[0] == template["Resources"]["PartnerEventsRule"]["Condition"]
    assert allow[2] == {"Ref": "AWS::NoValue"}


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


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("", True), ("ops@example.com", True), ("ops.team+bwp@mail.example.co.uk", True), ("ops", False), ("a@b", False)],
)
def test_alarm_email_pattern(template: dict[str, Any], value: str, accepted: bool) -> None:
    pattern = re.compile(template["Parameters"]["AlarmEmail"]["AllowedPattern"])
    assert bool(pattern.fullmatch(value)) is accepted


def test_event_pipeline_parameters_have_the_documented_defaults_and_bounds(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["PartnerEventSourceName"]["Default"] == ""  # an idle pipeline until configured
    assert parameters["EventBusMode"]["AllowedValues"] == ["create", "existing"]
    assert parameters["EventBusMode"]["Default"] == "create"
    assert parameters["AlarmEmail"]["Default"] == ""
    bounds = {name: (p.get("Default"), p.get("MinValue"), p.get("MaxValue")) for name, p in parameters.items()}
    assert bounds["EventBatchSize"] == (10, 1, 100)
    assert bounds["EventBatchWindowSeconds"] == (1, 0, 300)
    assert bounds["EventsMaxConcurrency"] == (5, 2, 1000)  # 2: Lambda's minimum MaximumConcurrency
    assert bounds["EventRecordRetentionDays"] == (90, 1, 3650)


def test_event_pipeline_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["EventsQueueUrl"]["Value"] == {"Ref": "EventsQueue"}
    assert outputs["EventsQueueArn"]["Value"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    assert outputs["EventsDeadLetterQueueUrl"]["Value"] == {"Ref": "EventsDeadLetterQueue"}
    assert outputs["EventsDeadLetterQueueArn"]["Value"] == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}
    # the bus and rule outputs exist when the rule does; the bus output names the bus the rule is on
    rule = template["Resources"]["PartnerEventsRule"]
    assert outputs["PartnerEventBusName"]["Value"] == rule["Properties"]["EventBusName"]
    assert outputs["PartnerEventsRuleArn"]["Value"] == {"Fn::GetAtt": ["PartnerEventsRule", "Arn"]}
    for name in ("PartnerEventBusName", "PartnerEventsRuleArn"):
        assert outputs[name]["Condition"] == rule["Condition"], name


# --------------------------------------------------------------------------- SQS sample events


def test_sqs_samples_are_lambda_sqs_batches() -> None:
    # given the SQS samples (events/sqs-*.json)
    samples = sqs_sample_events()
    assert samples, "no events/sqs-*.json sample"
    for name, sample in samples.items():
        # then each is a batch of SQS records as Lambda delivers them
        records = sample.get("Records")
        assert isinstance(records, list), name
        assert records, name
        for record in records:
            assert record["eventSource"] == "aws:sqs", name
            assert record["eventSourceARN"].startswith("arn:aws:sqs:"), name
            assert isinstance(record["messageId"], str), name
            assert record["messageId"], name
            assert isinstance(record["body"], str), name


def test_every_function_has_a_sample_event(template: dict[str, Any]) -> None:
    # given the sample events: HTTP API ones by routeKey, SQS batches by file name
    route_keys = set(sample_events())
    has_sqs_samples = bool(sqs_sample_events())
    for logical_id, function in functions(template).items():
        # then each function has at least one sample for one of its event sources
        events = function["Properties"].get("Events", {}).values()
        routes = {f"{e['Properties']['Method']} {e['Properties']['Path']}" for e in events if e["Type"] == "HttpApi"}
        has_sample = bool(routes & route_keys) or (has_sqs_samples and any(e["Type"] == "SQS" for e in events))
        has_sample |= any(e["Type"] == "Schedule" for e in events) and function_for(SWEEP_SAMPLE) == logical_id
        by_file_name = ("DynamoDB", "EventBridgeRule")
        if "FunctionUrlConfig" in function["Properties"] or any(e["Type"] in by_file_name for e in events):
            # function URL, stream and app-bus rule events: by file name
            has_sample |= any(function_for(path) == logical_id for path in EVENTS_DIR.glob("*.json"))
        assert has_sample, f"{logical_id}: no sample event in events/"


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


# --------------------------------------------------------------------------- storage and secret


def test_installations_table_is_the_single_on_demand_encrypted_table_with_ttl(template: dict[str, Any]) -> None:
    # given the tables of the template
    tables = resources_of_type(template, "AWS::DynamoDB::Table")
    assert list(tables) == ["InstallationsTable"]
    table = tables["InstallationsTable"]
    properties = table["Properties"]
    spec = dynamodb_table_spec(template)
    # then keys are string pk/sk, TTL on expires_at, on-demand, PITR and SSE on, retained with the
    # stack and protected from deletion
    assert (spec["hash_key"], spec["range_key"], spec["ttl_attribute"]) == ("pk", "sk", "expires_at")
    # and the two indexes (the sweep's, the tenant purge's) are keyed and projected as the code
    # queries them (shared/store/keys.py), keys only
    attributes = {a["AttributeName"]: a["AttributeType"] for a in spec["AttributeDefinitions"]}
    assert attributes == {"pk": "S", "sk": "S", SWEEP_SHARD: "S", SWEEP_HOUR: "N", TENANT: "S"}
    indexes = {i["IndexName"]: i for i in spec["GlobalSecondaryIndexes"]}
    keys = {name: [(k["AttributeName"], k["KeyType"]) for k in i["KeySchema"]] for name, i in indexes.items()}
    assert keys == {SWEEP_INDEX: [(SWEEP_SHARD, "HASH"), (SWEEP_HOUR, "RANGE")], TENANT_INDEX: [(TENANT, "HASH")]}
    assert all(i["Projection"] == {"ProjectionType": "KEYS_ONLY"} for i in indexes.values())
    assert spec["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert properties["DeletionProtectionEnabled"] is True


def test_client_credentials_secret_is_created_with_placeholders_only(template: dict[str, Any]) -> None:
    # given the client credentials secret
    properties = template["Resources"]["ClientCredentialsSecret"]["Properties"]
    # then it carries no literal value: a client_id placeholder and a generated client_secret
    assert "SecretString" not in properties
    generated = properties["GenerateSecretString"]
    assert json.loads(generated["SecretStringTemplate"]) == {"client_id": "REPLACE_ME"}
    assert generated["GenerateStringKey"] == "client_secret"
    assert "put-secret-value" in properties["Description"]


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


# --------------------------------------------------------------------------- parameters


def test_verification_key_defaults_to_the_published_key_and_accepts_all_documented_forms(
    template: dict[str, Any],
) -> None:
    # given the verification key parameter
    parameter = template["Parameters"]["BwpVerificationPublicKey"]
    pattern = re.compile(parameter["AllowedPattern"])
    pem = parameter["Default"]
    # then its default is the published PEM
    assert pem.strip().splitlines() == [
        "-----BEGIN PUBLIC KEY-----",
        PUBLISHED_KEY_BODY[:64],
        PUBLISHED_KEY_BODY[64:],
        "-----END PUBLIC KEY-----",
    ]
    # and the pattern accepts real newlines, literal \n and the bare body, but not other text
    for form in (pem, pem.replace("\n", "\\n"), PUBLISHED_KEY_BODY):
        assert pattern.fullmatch(form), form
    assert not pattern.fullmatch('{"kty": "EC"}')


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


def test_parameters_have_the_documented_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["BwpAuthorizeUrl"]["Default"] == "https://console.buywithprime.amazon.com/marketplace/authorize"
    assert parameters["BwpTokenUrl"]["Default"] == "https://api.buywithprime.amazon.com/token"
    assert parameters["BwpGraphqlUrl"]["Default"] == "https://api.buywithprime.amazon.com/graphql"
    for name in ("PublicBaseUrl", "BwpApiVersion", "PostInstallRedirectUrl"):
        assert parameters[name]["Default"] == "", name
    ttl = parameters["OAuthStateTtlSeconds"]
    assert (ttl["Default"], ttl["MinValue"], ttl["MaxValue"]) == (600, 60, 3600)
    assert parameters["LogRetentionDays"]["Default"] in parameters["LogRetentionDays"]["AllowedValues"]
    assert parameters["LogLevel"]["Default"] == "INFO"


# --------------------------------------------------------------------------- outputs


@pytest.mark.parametrize(
    ("output", "path"),
    [
        ("ApiBaseUrl", ""),
        ("LaunchUrl", "/launch"),
        ("InstallUrl", "/install"),
        ("SettingsUrl", "/settings"),
        ("UninstallUrl", "/uninstall"),
        ("HealthUrl", "/health"),
    ],
)
def test_url_outputs_end_in_their_route_path_on_both_domains(template: dict[str, Any], output: str, path: str) -> None:
    # given the output's value, an !If on HasPublicBaseUrl
    condition, custom, own = template["Outputs"][output]["Value"]["Fn::If"]
    assert condition == "HasPublicBaseUrl"
    # then the custom-domain branch is PublicBaseUrl + path, the other the execute-api URL + path
    custom_text = custom["Ref"] if "Ref" in custom else sub_text(custom)
    assert custom_text == ("${PublicBaseUrl}" + path if path else "PublicBaseUrl")
    assert sub_text(own) == "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}" + path


def test_url_outputs_match_the_routes(template: dict[str, Any]) -> None:
    # given the routes, then each non-health lifecycle route has its URL output with the same path
    paths = {route["event"].removesuffix("Route"): route["Path"] for route in http_api_routes(template)}
    for name, path in paths.items():
        _, _, own = template["Outputs"][f"{name}Url"]["Value"]["Fn::If"]
        assert sub_text(own).endswith(path)
    assert template["Conditions"]["HasPublicBaseUrl"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "PublicBaseUrl"}, ""]}]}


def test_other_outputs(own_table: dict[str, Any]) -> None:
    outputs = own_table["Outputs"]
    assert outputs["InstallationsTableName"]["Value"] == {"Ref": "InstallationsTable"}
    assert outputs["ClientCredentialsSecretArn"]["Value"] == {"Ref": "ClientCredentialsSecret"}
    command = sub_text(outputs["PutClientCredentialsCommand"]["Value"])
    words = shlex.split(command)
    assert words[:3] == ["aws", "secretsmanager", "put-secret-value"]
    assert words[words.index("--secret-id") + 1] == "${ClientCredentialsSecret}"
    assert words[words.index("--region") + 1] == "${AWS::Region}"  # the secret's region, whatever the CLI's default
    secret_string = words[words.index("--secret-string") + 1]
    assert json.loads(secret_string) == {"client_id": "...", "client_secret": "..."}


# --------------------------------------------------------------------------- samconfig.toml


def test_samconfig_environments(samconfig: dict[str, Any]) -> None:
    # given samconfig.toml
    assert samconfig["version"] == 0.1
    suffixes = {"default": "", "dev": "-dev", "prod": "-prod"}
    for environment, suffix in suffixes.items():
        # then each environment names its stack, builds cached/parallel, lints and deploys with a changeset
        config = samconfig[environment]
        assert config["global"]["parameters"]["stack_name"] == f"buy-with-prime-integration{suffix}"
        assert config["build"]["parameters"] == {"cached": True, "parallel": True}
        assert config["validate"]["parameters"]["lint"] is True
        deploy = config["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["confirm_changeset"] is True
        assert deploy["resolve_s3"] is True
        assert "region" not in deploy, "the region is left to the user"
    assert samconfig["default"]["local_invoke"]["parameters"]["env_vars"] == "events/env.json"
    prod = parameter_overrides(samconfig["prod"]["deploy"]["parameters"]["parameter_overrides"])
    assert prod["LogRetentionDays"] == "90"
    assert prod["LogLevel"] == "INFO"


def test_samconfig_overrides_name_template_parameters_with_allowed_values(
    template: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    # given every parameter_overrides of samconfig.toml
    for environment, config in samconfig.items():
        if not isinstance(config, dict):
            continue
        for command, section in config.items():
            text = section.get("parameters", {}).get("parameter_overrides")
            if not text:
                continue
            for name, value in parameter_overrides(text).items():
                # then it names a template parameter, accepts the value, and is no secret
                where = f"{environment}.{command}: {name}"
                assert name in template["Parameters"], f"{where} is not a template parameter"
                assert not SECRET_LIKE_NAME.search(name), where
                parameter = template["Parameters"][name]
                if "AllowedValues" in parameter:
                    assert value in {str(v) for v in parameter["AllowedValues"]}, f"{where}={value} not allowed"
                if "AllowedPattern" in parameter:
                    assert re.fullmatch(parameter["AllowedPattern"], value), f"{where}={value} does not match"


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
