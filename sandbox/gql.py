"""Reading the integration's GraphQL queries with graphql-core's own parser (the reference
implementation's port), reduced to what the stand-in needs: the operation's top-level fields with
their aliases, arguments (literals and ``$variables`` resolved) and nested selections.

Fragments, mutations and subscriptions are refused with :class:`GraphQLSyntaxError`: the
integration sends none, and the stand-in answers fields, not a schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, SelectionSetNode, parse
from graphql.utilities import value_from_ast_untyped

__all__ = ["Field", "GraphQLSyntaxError", "parse_operation", "project"]


class GraphQLSyntaxError(ValueError):
    """The query cannot be read (reported to the client as a ValidationError)."""


@dataclass(frozen=True)
class Field:
    name: str
    alias: str
    args: dict[str, Any] = field(default_factory=dict)
    selections: tuple[Field, ...] | None = None


def _fields(selection_set: SelectionSetNode | None, variables: dict[str, Any]) -> tuple[Field, ...] | None:
    if selection_set is None:
        return None
    fields: list[Field] = []
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode):
            raise GraphQLSyntaxError("fragments are not supported by the sandbox")
        args = {arg.name.value: value_from_ast_untyped(arg.value, variables) for arg in selection.arguments}
        name = selection.name.value
        alias = selection.alias.value if selection.alias else name
        fields.append(Field(name=name, alias=alias, args=args, selections=_fields(selection.selection_set, variables)))
    return tuple(fields)


def parse_operation(
    query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
) -> tuple[Field, ...]:
    """The top-level fields of the operation to run, with arguments resolved."""
    try:
        document = parse(query, no_location=True)
    except GraphQLError as error:
        raise GraphQLSyntaxError(error.message) from None
    operations: list[OperationDefinitionNode] = []
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            raise GraphQLSyntaxError("fragments are not supported by the sandbox")
        if definition.operation is not OperationType.QUERY:
            raise GraphQLSyntaxError(f"operation type {definition.operation.value!r} is not supported")
        operations.append(definition)
    if operation_name is not None:
        chosen = [op for op in operations if op.name and op.name.value == operation_name]
        if not chosen:
            raise GraphQLSyntaxError(f"Unknown operation named {operation_name!r}")
    elif len(operations) > 1:
        raise GraphQLSyntaxError("operationName is required when the document has several")
    else:
        chosen = operations
    return _fields(chosen[0].selection_set, variables or {}) or ()


def project(value: Any, selections: tuple[Field, ...] | None) -> Any:
    """Keep only the selected fields of ``value`` (lists mapped, aliases applied).

    Lenient where a real server would refuse: a field the stand-in data lacks reads as ``null``,
    and an object without a selection set is returned whole.
    """
    if value is None or selections is None:
        return value
    if isinstance(value, list):
        return [project(item, selections) for item in value]
    if not isinstance(value, dict):
        return value
    return {sel.alias: project(value.get(sel.name), sel.selections) for sel in selections}
