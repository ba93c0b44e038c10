"""Read template.yaml (the single source of truth) into plain data and derive from it what local
set-up and tests need, so they never repeat the template.

Short-form intrinsic tags become CloudFormation's long form (`!Ref X` -> {"Ref": "X"},
`!GetAtt A.B` -> {"Fn::GetAtt": ["A", "B"]}, `!Condition C` -> {"Condition": "C"}, any other
`!Foo v` -> {"Fn::Foo": v}); unlike yaml.safe_load, dates such as 2010-09-09 stay strings.
"""

from __future__ import annotations

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
