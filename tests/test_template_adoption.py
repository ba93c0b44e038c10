"""Adopting an existing table (ExistingTableName, ExistingTableStreamArn), e.g. one restored from
point-in-time recovery (docs/disaster-recovery.md): nothing in the deployed stack may point at a
table the stack does not own, and with the parameters empty nothing may point at anything else.

The template is checked as CloudFormation receives it: translated by SAM's own translator (the
functions' roles, policies and event source mappings exist only after the transform), then with
its conditions resolved for the parameter values (devtools.template.resolve_conditions).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.template import SAM_PYTHON, load_template, resolve_conditions, rule_failures, sam_translate

REGION, ACCOUNT = "us-east-1", "123456789012"
RESTORED = "bwp-installations-restored-20261203"
RESTORED_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{RESTORED}"
RESTORED_STREAM = f"{RESTORED_ARN}/stream/2026-12-04T02:15:42.123"
ADOPT = {"ExistingTableName": RESTORED, "ExistingTableStreamArn": RESTORED_STREAM}
PSEUDO = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
# Every pseudo parameter: a reference to one never dangles.
PSEUDO_NAMES = {*PSEUDO, "AWS::StackName", "AWS::StackId", "AWS::NoValue", "AWS::NotificationARNs"}
TABLE = "AWS::DynamoDB::Table"


def deployed(parameters: dict[str, str]) -> dict[str, Any]:
    """The stack CloudFormation would deploy with these parameters: SAM's translation, conditions resolved."""
    if not SAM_PYTHON.exists():  # make unit / make pytest create it; CI never skips these tests
        message = f"no {SAM_PYTHON} (SAM CLI's virtual environment): run `make install`"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return resolve_conditions(sam_translate(parameter_values=parameters, region=REGION), parameters)


@pytest.fixture(scope="module")
def adopted() -> dict[str, Any]:
    return deployed(ADOPT)


@pytest.fixture(scope="module")
def own() -> dict[str, Any]:
    return deployed({})


# --------------------------------------------------------------------------- walking the template


def references(node: Any) -> Iterator[str]:
    """Every logical ID or parameter a Ref, GetAtt or Sub names inside node."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                yield (value.split(".", 1) if isinstance(value, str) else value)[0]
            elif key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
                for name in re.findall(r"\$\{(?!!)([^}.]+)[^}]*\}", text):
                    if name not in variables:
                        yield name
                yield from references(variables)
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def reachable_references(template: dict[str, Any]) -> set[str]:
    """What the deployed resources and outputs reference, DependsOn included."""
    found: set[str] = set()
    for resource in template["Resources"].values():
        found |= set(references(resource))
        depends = resource.get("DependsOn", [])
        found |= {depends} if isinstance(depends, str) else set(depends)
    found |= set(references(template.get("Outputs", {})))
    return found


def rendered(template: dict[str, Any], value: Any) -> str:
    """value as a string, when it is made of parameters and pseudo parameters only; a reference to a
    resource renders as <Resource.attribute>, so it can never equal an ARN or a name."""
    parameters = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()} | ADOPT

    def name_of(name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        return parameters.get(name, f"<{name}>")

    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return name_of(value["Ref"])
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return "<" + ".".join(value["Fn::GetAtt"]) + ">"
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        local = {name: rendered(template, v) for name, v in variables.items()}
        return re.sub(r"\$\{([^}]+)\}", lambda m: local.get(m.group(1)) or name_of(m.group(1)), text)
    raise AssertionError(f"cannot render {value!r}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def dynamodb_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(role or policy, statement) for every inline IAM statement with a DynamoDB action."""
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        if "PolicyDocument" in properties:
            documents.append(properties["PolicyDocument"])
        for document in documents:
            for statement in as_list(document.get("Statement", [])):
                actions = as_list(statement.get("Action", [])) + as_list(statement.get("NotAction", []))
                if any(str(action).startswith("dynamodb:") for action in actions):
                    yield logical_id, statement


def function_variables(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            yield logical_id, resource["Properties"].get("Environment", {}).get("Variables", {})


def stream_mappings(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Event source mappings on anything but a queue of the stack: the DynamoDB stream's."""
    resources = template["Resources"]

    def on_a_queue(arn: Any) -> bool:
        getatt = arn.get("Fn::GetAtt") if isinstance(arn, dict) else None
        return bool(getatt) and resources.get(getatt[0], {}).get("Type") == "AWS::SQS::Queue"

    return {
        logical_id: resource["Properties"]
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and not on_a_queue(resource["Properties"]["EventSourceArn"])
    }


def table_dimensions(template: dict[str, Any]) -> list[str]:
    """Every TableName an alarm or the dashboard watches."""
    names = []
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            names += [d["Value"] for d in resource["Properties"].get("Dimensions", []) if d["Name"] == "TableName"]
        if resource["Type"] == "AWS::CloudWatch::Dashboard":
            body = resource["Properties"]["DashboardBody"]["Fn::Sub"]
            text, variables = (body, {}) if isinstance(body, str) else body
            for name in re.findall(r'"TableName",\s*"\$\{([^}]+)\}"', text):
                names.append(variables.get(name, {"Ref": name}))
    return names


# --------------------------------------------------------------------------- adopting a table


def test_an_adopted_table_is_not_created_and_nothing_references_a_resource_the_stack_lacks(
    adopted: dict[str, Any],
) -> None:
    # given the stack translated and resolved with ExistingTableName set
    resources = adopted["Resources"]
    # then it creates no table
    assert not [logical_id for logical_id, r in resources.items() if r["Type"] == TABLE]
    # and every reference anywhere a deployed resource or output can reach names a resource the
    # stack deploys, a parameter or a pseudo parameter: nothing points at the table it did not create
    dangling = reachable_references(adopted) - set(resources) - set(adopted["Parameters"]) - PSEUDO_NAMES
    assert dangling == set()
    # (the check is not vacuous: the existing table's parameters are what the stack now uses)
    assert {"ExistingTableName", "ExistingTableStreamArn"} <= reachable_references(adopted)


def test_every_dynamodb_permission_names_the_adopted_table_its_indexes_or_its_stream_only(
    adopted: dict[str, Any],
) -> None:
    # given every IAM statement on DynamoDB in the translated stack
    statements = list(dynamodb_statements(adopted))
    assert len({role for role, _ in statements}) >= 4  # OAuth, events, sweep, broker (+ the outbox's Deny)
    allowed = re.compile(re.escape(RESTORED_ARN) + r"(/index/[A-Za-z0-9_.-]+)?")
    for role, statement in statements:
        resources = as_list(statement.get("Resource", [])) + as_list(statement.get("NotResource", []))
        assert resources, f"{role}: a DynamoDB statement without a resource"
        for resource in map(lambda r: rendered(adopted, r), resources):
            # then each names the existing table, one of its indexes or its stream, nothing else
            assert allowed.fullmatch(resource) or resource == RESTORED_STREAM, f"{role}: {resource}"


def test_the_outbox_reads_the_adopted_tables_stream_and_may_read_no_other(adopted: dict[str, Any]) -> None:
    # given the event source mappings on a DynamoDB stream
    mappings = stream_mappings(adopted)
    assert mappings
    # then each reads the stream of the existing table
    assert {rendered(adopted, m["EventSourceArn"]) for m in mappings.values()} == {RESTORED_STREAM}
    # and every role SAM gives stream access on every stream (AWSLambdaDynamoDBExecutionRole) denies
    # the stream actions on any stream but the adopted one
    for role_id, role in adopted["Resources"].items():
        managed = [str(arn) for arn in role.get("Properties", {}).get("ManagedPolicyArns", [])]
        if role["Type"] != "AWS::IAM::Role" or not any("AWSLambdaDynamoDBExecutionRole" in a for a in managed):
            continue
        denies = [s for r, s in dynamodb_statements(adopted) if r == role_id and s["Effect"] == "Deny"]
        assert [rendered(adopted, s["NotResource"]) for s in denies] == [RESTORED_STREAM], role_id


def test_functions_alarms_dashboard_and_outputs_name_the_adopted_table(adopted: dict[str, Any]) -> None:
    # given the functions that are told a table (TABLE_NAME), the table metrics watched, the output
    told = {f: v["TABLE_NAME"] for f, v in function_variables(adopted) if "TABLE_NAME" in v}
    assert len(told) >= 4
    watched = table_dimensions(adopted)
    assert len(watched) >= 2  # the write-throttle alarm and the dashboard's throttling widget
    output = adopted["Outputs"]["InstallationsTableName"]["Value"]
    # then every one names the existing table (bwpctl finds the table through that output)
    assert {rendered(adopted, value) for value in [*told.values(), *watched, output]} == {RESTORED}


# --------------------------------------------------------------------------- the default: the stack's own table


def test_by_default_the_stack_creates_its_table_and_uses_only_that(own: dict[str, Any]) -> None:
    # given the stack translated with the parameters at their defaults
    tables = [logical_id for logical_id, r in own["Resources"].items() if r["Type"] == TABLE]
    # then it creates one table, protected from deletion (by the stack, a replacement or by hand)
    assert len(tables) == 1
    [table] = tables
    assert own["Resources"][table]["DeletionPolicy"] == "Retain"
    assert own["Resources"][table]["UpdateReplacePolicy"] == "Retain"
    assert own["Resources"][table]["Properties"]["DeletionProtectionEnabled"] is True
    # and nothing reaches for an existing table, and nothing dangles
    reached = reachable_references(own)
    assert not {"ExistingTableName", "ExistingTableStreamArn"} & reached
    assert reached - set(own["Resources"]) - set(own["Parameters"]) - PSEUDO_NAMES == set()
    # and every DynamoDB permission, table name, watched table and stream is that table's
    for role, statement in dynamodb_statements(own):
        resources = as_list(statement.get("Resource", [])) + as_list(statement.get("NotResource", []))
        assert {ref for r in resources for ref in references(r)} == {table}, role
    values = [v["TABLE_NAME"] for _, v in function_variables(own) if "TABLE_NAME" in v]
    values += [*table_dimensions(own), own["Outputs"]["InstallationsTableName"]["Value"]]
    assert all(value == {"Ref": table} for value in values), values
    assert [m["EventSourceArn"] for m in stream_mappings(own).values()] == [{"Fn::GetAtt": [table, "StreamArn"]}]


# --------------------------------------------------------------------------- the parameters themselves


@pytest.mark.parametrize(
    ("parameters", "refused"),
    [
        pytest.param({}, False, id="neither"),
        pytest.param(ADOPT, False, id="both"),
        pytest.param({"ExistingTableName": RESTORED}, True, id="table-without-stream"),
        pytest.param({"ExistingTableStreamArn": RESTORED_STREAM}, True, id="stream-without-table"),
    ],
)
def test_the_rules_refuse_half_an_adoption(parameters: dict[str, str], refused: bool) -> None:
    # given the template's Rules, when evaluated for the parameters, then half an adoption is refused
    # (before any resource changes), with a message naming what is missing
    failures = rule_failures(load_template(), parameters)
    assert bool(failures) is refused, failures
    assert all("ExistingTableStreamArn" in failure for failure in failures)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        (RESTORED_STREAM, True),
        (f"arn:aws-cn:dynamodb:cn-north-1:{ACCOUNT}:table/t.1_x-y/stream/2026-12-04T02:15:42.123", True),
        (RESTORED_ARN, False),  # the table's ARN, not its stream's
        (RESTORED, False),
        (f"{RESTORED_STREAM} ", False),
    ],
)
def test_the_stream_arn_parameter_takes_a_stream_arn_only(value: str, accepted: bool) -> None:
    pattern = load_template()["Parameters"]["ExistingTableStreamArn"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is accepted
