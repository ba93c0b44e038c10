"""Read template.yaml (the single source of truth) into plain data and derive from it what local
set-up and tests need, so they never repeat the template.

Short-form intrinsic tags become CloudFormation's long form (`!Ref X` -> {"Ref": "X"},
`!GetAtt A.B` -> {"Fn::GetAtt": ["A", "B"]}, `!Condition C` -> {"Condition": "C"}, any other
`!Foo v` -> {"Fn::Foo": v}); unlike yaml.safe_load, dates such as 2010-09-09 stay strings.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader that knows CloudFormation's short-form tags and keeps dates as strings."""


# CloudFormation has no date type: drop the timestamp resolver (on a copy: SafeLoader shares it).
_TemplateLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix in {"Ref", "Condition"}:
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource_id, _, attribute = value.partition(".")
        value = [resource_id, attribute]
    return {f"Fn::{tag_suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: str | Path = TEMPLATE_PATH) -> dict[str, Any]:
    """A fresh copy of the template as plain dicts, lists and strings (safe to modify)."""
    with open(path, encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(template, dict):
        raise ValueError(f"{path}: not a CloudFormation template (top level is not a mapping)")
    return template


@cache
def _project_template() -> dict[str, Any]:
    return load_template()


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Resources of one type, by logical ID, e.g. resources_of_type(t, "AWS::Serverless::Function")."""
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


def dynamodb_table_spec(
    template: dict[str, Any] | None = None, logical_id: str = "InstallationsTable"
) -> dict[str, Any]:
    """The table's definition: KeySchema, AttributeDefinitions, BillingMode (and indexes, if any),
    ready for create_table, plus hash_key, range_key and ttl_attribute for readers."""
    template = template if template is not None else _project_template()
    properties = template["Resources"][logical_id]["Properties"]
    keys = {element["KeyType"]: element["AttributeName"] for element in properties["KeySchema"]}
    spec: dict[str, Any] = {
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if properties.get(index_kind):
            spec[index_kind] = properties[index_kind]
    spec["hash_key"] = keys["HASH"]
    spec["range_key"] = keys.get("RANGE")
    spec["ttl_attribute"] = (properties.get("TimeToLiveSpecification") or {}).get("AttributeName")
    return spec


def table_create_arguments(logical_id: str = "InstallationsTable", name: str | None = None) -> dict[str, Any]:
    """boto3 `create_table` arguments taken from the table's own properties in template.yaml."""
    spec = dynamodb_table_spec(logical_id=logical_id)
    return {"TableName": name or logical_id, **{k: v for k, v in spec.items() if k[0].isupper()}}


def function_environment(logical_id: str) -> dict[str, Any]:
    """The function's environment variables, Globals merged in (values may be intrinsics)."""
    template = _project_template()
    merged: dict[str, Any] = dict(
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    merged.update(template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {}))
    return merged


def function_timeout(logical_id: str) -> float:
    """The function's Timeout in seconds (its own, else Globals')."""
    template = _project_template()
    own = template["Resources"][logical_id]["Properties"].get("Timeout")
    return float(own if own is not None else template.get("Globals", {}).get("Function", {}).get("Timeout", 3))


def parameters() -> dict[str, Any]:
    return dict(_project_template().get("Parameters", {}))


# --- parameters, conditions and rules as CloudFormation evaluates them --------------------------------
def parameter_value(template: Mapping[str, Any], name: str, parameter_values: Mapping[str, str]) -> str:
    """A parameter's value: the given one, else its Default (a list Default joined with commas)."""
    declared = template.get("Parameters", {})
    if name not in declared:
        raise KeyError(f"unknown parameter {name!r}")
    if name in parameter_values:
        return str(parameter_values[name])
    if "Default" not in declared[name]:
        raise KeyError(f"parameter {name!r} has no Default: give it a value")
    default = declared[name]["Default"]
    return ",".join(map(str, default)) if isinstance(default, list) else str(default)


def _truth(template: Mapping[str, Any], value: Any, parameter_values: Mapping[str, str]) -> bool:
    """A condition (or rule assertion) built from Equals, Not, And, Or, Condition and parameter Refs."""

    def operand(item: Any) -> Any:
        if isinstance(item, dict) and set(item) == {"Ref"}:
            value = parameter_value(template, item["Ref"], parameter_values)
            is_list = str(template["Parameters"][item["Ref"]].get("Type", "")).startswith(("List<", "CommaDelimited"))
            return value.split(",") if is_list else value
        if isinstance(item, dict) and set(item) == {"Fn::Join"}:
            separator, items = item["Fn::Join"]
            joined = operand(items)
            return str(separator).join(str(operand(i)) for i in (joined if isinstance(joined, list) else [joined]))
        if isinstance(item, (dict, list)):
            raise ValueError(f"cannot evaluate {item!r} in a condition")
        return str(item)

    if isinstance(value, dict) and len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Condition":
            return _truth(template, template["Conditions"][argument], parameter_values)
        if key == "Fn::Equals":
            left, right = argument
            return bool(operand(left) == operand(right))
        if key == "Fn::Not":
            return not _truth(template, argument[0], parameter_values)
        if key == "Fn::And":
            return all(_truth(template, item, parameter_values) for item in argument)
        if key == "Fn::Or":
            return any(_truth(template, item, parameter_values) for item in argument)
    raise ValueError(f"cannot evaluate {value!r} as a condition")


def condition_values(template: Mapping[str, Any], parameter_values: Mapping[str, str] | None = None) -> dict[str, bool]:
    """Every named condition's value for these parameter values (the others at their defaults)."""
    values = dict(parameter_values or {})
    return {name: _truth(template, definition, values) for name, definition in template.get("Conditions", {}).items()}


def rule_failures(template: Mapping[str, Any], parameter_values: Mapping[str, str] | None = None) -> list[str]:
    """The AssertDescription of every Rules assertion these parameter values fail: CloudFormation
    refuses the stack operation with them before it changes any resource."""
    values = dict(parameter_values or {})
    failures = []
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not _truth(template, rule["RuleCondition"], values):
            continue
        for assertion in rule.get("Assertions", []):
            if not _truth(template, assertion["Assert"], values):
                failures.append(f"{name}: {assertion.get('AssertDescription', '')}")
    return failures


def resolve_conditions(
    template: Mapping[str, Any],
    parameter_values: Mapping[str, str] | None = None,
    only: Iterable[str] | None = None,
) -> dict[str, Any]:
    """A copy of the template as deployed with these parameter values: resources and outputs whose
    condition is false are gone, every `Fn::If` is replaced by its chosen branch and AWS::NoValue
    drops its property or list element. `only`: resolve these conditions and leave the others."""
    values = condition_values(template, parameter_values)
    chosen = {name: value for name, value in values.items() if only is None or name in set(only)}
    no_value = object()

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (walk(v) for v in node) if item is not no_value]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"} and node["Ref"] == "AWS::NoValue":
            return no_value
        if set(node) == {"Fn::If"} and node["Fn::If"][0] in chosen:
            name, when_true, when_false = node["Fn::If"]
            return walk(when_true if chosen[name] else when_false)
        walked = {key: walk(value) for key, value in node.items()}
        return {key: value for key, value in walked.items() if value is not no_value}

    resolved: dict[str, Any] = {}
    for section, content in template.items():
        if section in {"Resources", "Outputs"}:
            kept = {}
            for logical_id, entry in content.items():
                condition = entry.get("Condition")
                if isinstance(condition, str) and condition in chosen:
                    if not chosen[condition]:
                        continue
                    kept[logical_id] = walk({key: value for key, value in entry.items() if key != "Condition"})
                else:
                    kept[logical_id] = walk(entry)
            resolved[section] = kept
        else:
            resolved[section] = copy.deepcopy(content)
    return resolved


# --- SAM's own translation -----------------------------------------------------------------------------
# aws-sam-translator lives in SAM CLI's virtual environment (its pins clash with .venv's): the
# translation runs there, offline, on the template given as JSON.
SAM_PYTHON = PROJECT_ROOT / ".venv-sam" / "bin" / "python"
_TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform

request = json.load(sys.stdin)
template = request["template"]
# The translator refuses local code paths (as in `sam validate`): any S3 location will do.
for resource in template.get("Resources", {}).values():
    if resource.get("Type") == "AWS::Serverless::Function":
        resource.setdefault("Properties", {})["CodeUri"] = "s3://translation-only/code.zip"


class NoManagedPolicies:  # SAM maps managed policy names through IAM otherwise; none are named here
    def load(self):
        return {}


json.dump(transform(template, request["parameters"], NoManagedPolicies()), sys.stdout)
"""


def sam_translate(
    template: Mapping[str, Any] | None = None,
    parameter_values: Mapping[str, str] | None = None,
    region: str = "us-east-1",
) -> dict[str, Any]:
    """The template as CloudFormation receives it after the AWS::Serverless transform (functions,
    roles, event source mappings...), translated by SAM's own translator without AWS credentials.
    Intrinsics and conditions stay in place: see resolve_conditions."""
    if not SAM_PYTHON.exists():
        raise FileNotFoundError(f"{SAM_PYTHON} is missing: run `make install` (SAM CLI's virtual environment)")
    request = {
        "template": template if template is not None else _project_template(),
        "parameters": dict(parameter_values or {}),
    }
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",  # no credentials are needed: never look for any
    }
    answer = subprocess.run(  # noqa: S603 - our own interpreter and script
        [str(SAM_PYTHON), "-c", _TRANSLATE],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=120,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"SAM could not translate the template:\n{answer.stderr.strip()}")
    translated: dict[str, Any] = json.loads(answer.stdout)
    return translated
