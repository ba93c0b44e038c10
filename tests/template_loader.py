"""Load the SAM/CloudFormation template into plain Python data, for tests.

CloudFormation's short-form intrinsic tags become their long form, as CloudFormation itself reads them:

    !Ref X              -> {"Ref": "X"}
    !GetAtt A.B         -> {"Fn::GetAtt": ["A", "B"]}
    !Sub "..."          -> {"Fn::Sub": "..."}
    !If [c, a, b]       -> {"Fn::If": ["c", a, b]}
    !Condition C        -> {"Condition": "C"}
    !<Other> v          -> {"Fn::<Other>": v}     (Join, Select, Split, FindInMap, Not, Equals, ...)

Unlike yaml.safe_load, dates such as 2010-09-09 stay strings (CloudFormation has no date type).

Public API:
    PROJECT_ROOT, TEMPLATE_PATH
    load_template(path=TEMPLATE_PATH) -> dict
    resources_of_type(template, resource_type) -> dict[str, dict]
    dynamodb_table_spec(template=None, logical_id="InstallationsTable") -> dict
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "PROJECT_ROOT",
    "TEMPLATE_PATH",
    "dynamodb_table_spec",
    "load_template",
    "resources_of_type",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that knows CloudFormation's short-form tags and keeps dates as strings."""


# Drop the timestamp resolver (copy the table first: it is shared with SafeLoader).
_CfnLoader.yaml_implicit_resolvers = {
    first_char: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first_char, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value = _construct_node(loader, node)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: str | Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template into plain dicts/lists/strings (see module doc)."""
    with open(path, encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(template, dict):
        raise ValueError(f"{path}: not a CloudFormation template (top level is not a mapping)")
    return template


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
    """The table's definition, ready for tests (moto) to create the same table.

    Returns {"KeySchema": [...], "AttributeDefinitions": [...], "BillingMode": ...,
    "GlobalSecondaryIndexes": [...] (only if the template has some),
    "hash_key": "pk", "range_key": "sk" (or None), "ttl_attribute": "expires_at" (or None)}.
    The first three (four) keys can be passed straight to boto3's create_table:

        spec = dynamodb_table_spec()
        client.create_table(TableName="t", **{k: v for k, v in spec.items() if k[0].isupper()})
    """
    template = template if template is not None else load_template()
    properties = template["Resources"][logical_id]["Properties"]
    key_schema = properties["KeySchema"]
    keys = {element["KeyType"]: element["AttributeName"] for element in key_schema}
    ttl = properties.get("TimeToLiveSpecification") or {}
    spec: dict[str, Any] = {
        "KeySchema": key_schema,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if properties.get("GlobalSecondaryIndexes"):
        spec["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    spec["hash_key"] = keys["HASH"]
    spec["range_key"] = keys.get("RANGE")
    spec["ttl_attribute"] = ttl.get("AttributeName") if ttl.get("Enabled") else None
    return spec
