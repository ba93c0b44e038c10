"""Read template.yaml (the single source of truth) into plain data, intrinsic tags included, and
derive from it what local set-up and tests need, so they never repeat the template."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref x` into {"Ref": x}, `!GetAtt a.b` into {"Fn::GetAtt": [a, b]}..."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


@cache
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    return loaded


def resource(logical_id: str, path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return dict(load_template(path)["Resources"][logical_id])


def table_create_arguments(logical_id: str = "InstallationsTable", name: str | None = None) -> dict[str, Any]:
    """boto3 `create_table` arguments taken from the table's own properties in template.yaml."""
    properties = resource(logical_id)["Properties"]
    arguments: dict[str, Any] = {
        "TableName": name or logical_id,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
    }
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if index_kind in properties:
            arguments[index_kind] = properties[index_kind]
    return arguments


def ttl_attribute(logical_id: str = "InstallationsTable") -> str:
    return str(resource(logical_id)["Properties"]["TimeToLiveSpecification"]["AttributeName"])


def function_environment(logical_id: str) -> dict[str, Any]:
    """The function's environment variables, Globals merged in (values may be intrinsics)."""
    template = load_template()
    merged: dict[str, Any] = dict(
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    merged.update(resource(logical_id)["Properties"].get("Environment", {}).get("Variables", {}))
    return merged


def parameter_default(name: str) -> Any:
    return load_template()["Parameters"][name].get("Default")
