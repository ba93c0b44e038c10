"""Execution of the GraphQL requests the sandbox answers, and its error documents.

Errors follow the documented shape: ``{"errors": [{"message", "path", "extensions":
{"classification": {"type", "errorType", "errorCode"}}}]}``.  ``type`` values are the documented
ones (AccessDeniedError, ValidationError, ResourceNotFoundError, ThrottlingError...);
``errorType``/``errorCode`` values are the sandbox's own (undocumented upstream).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sandbox.catalog import make_inventory_item, make_order, make_product, make_store, order_id_for_alias
from sandbox.gql import Field, GraphQLSyntaxError, parse_operation, project

__all__ = ["error_document", "execute", "graphql_error"]

OrderKey = tuple[str, str]  # (installation_id, order_id)


def graphql_error(
    message: str,
    kind: str,
    error_code: str,
    path: list[str] | None = None,
    error_type: str | None = None,
) -> dict[str, Any]:
    return {
        "message": message,
        "path": path,
        "extensions": {
            "classification": {
                "type": kind,
                "errorType": error_type or kind,
                "errorCode": error_code,
            }
        },
    }


def error_document(message: str, kind: str, error_code: str) -> dict[str, Any]:
    """A request-level failure: no ``data``, one error."""
    return {"data": None, "errors": [graphql_error(message, kind, error_code)]}


def _order_lookup(
    sel: Field,
    installation_id: str,
    api_version: str | None,
    orders: Mapping[OrderKey, dict[str, Any] | None],
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    ident = sel.args.get("orderIdentifier")
    alias: tuple[str, str] | None = None
    if isinstance(ident, dict) and isinstance(ident.get("orderId"), str):
        order_id = ident["orderId"]
    elif isinstance(ident, dict) and isinstance(ident.get("alias"), dict):
        alias_type = ident["alias"].get("aliasType")
        alias_id = ident["alias"].get("aliasId")
        if not isinstance(alias_type, str) or not isinstance(alias_id, str):
            return None, graphql_error(
                "alias needs aliasType and aliasId",
                "ValidationError",
                "INVALID_ARGUMENT",
                [sel.alias],
            )
        alias = (alias_type, alias_id)
        order_id = order_id_for_alias(alias_type, alias_id)
    elif isinstance(sel.args.get("orderId"), str):  # pre-2024 form: order(orderId: ...)
        order_id = sel.args["orderId"]
    else:
        return None, graphql_error(
            "order needs orderIdentifier: {orderId} or {alias: {aliasType, aliasId}}",
            "ValidationError",
            "INVALID_ARGUMENT",
            [sel.alias],
        )
    key = (installation_id, order_id)
    if key in orders:
        order = orders[key]
        if order is None:
            return None, graphql_error(
                f"Order {order_id} was not found",
                "ResourceNotFoundError",
                "ORDER_NOT_FOUND",
                [sel.alias],
            )
        return order, None
    return make_order(order_id, api_version, alias), None


def _item_lookup(sel: Field) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """inventoryItem(inventoryItemId:) and product(identifier: {id:}); other forms are refused."""
    if sel.name == "inventoryItem" and isinstance(sel.args.get("inventoryItemId"), str):
        return make_inventory_item(sel.args["inventoryItemId"]), None
    identifier = sel.args.get("identifier")
    if sel.name == "product" and isinstance(identifier, dict) and isinstance(identifier.get("id"), str):
        return make_product(identifier["id"]), None
    needs = "inventoryItemId" if sel.name == "inventoryItem" else "identifier: {id}"
    return None, graphql_error(f"{sel.name} needs {needs}", "ValidationError", "INVALID_ARGUMENT", [sel.alias])


def execute(
    raw_body: bytes,
    installation_id: str,
    api_version: str | None,
    orders: Mapping[OrderKey, dict[str, Any] | None],
) -> tuple[int, dict[str, Any], str]:
    """Run one request.  Returns (HTTP status, response document, operation label for counters)."""
    try:
        request = json.loads(raw_body)
    except ValueError:
        return 400, error_document("request body is not JSON", "ValidationError", "BAD_JSON"), ""
    query = request.get("query") if isinstance(request, dict) else None
    variables = request.get("variables") if isinstance(request, dict) else None
    operation_name = request.get("operationName") if isinstance(request, dict) else None
    if not isinstance(query, str) or not isinstance(variables, dict | None):
        return (
            400,
            error_document("body must be {query: string, variables?: object}", "ValidationError", "BAD_REQUEST"),
            "",
        )
    try:
        fields = parse_operation(query, variables, operation_name if isinstance(operation_name, str) else None)
    except GraphQLSyntaxError as exc:
        return 200, error_document(str(exc), "ValidationError", "INVALID_QUERY"), ""
    unknown = [
        f.name for f in fields if f.name not in ("buyWithPrimeStore", "order", "inventoryItem", "product", "__typename")
    ]
    if unknown:
        message = f"Field '{unknown[0]}' in type 'Query' is undefined"
        return 200, error_document(message, "ValidationError", "UNKNOWN_FIELD"), ""
    data: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for sel in fields:
        value: Any
        if sel.name == "__typename":
            value = "Query"
        elif sel.name == "buyWithPrimeStore":
            value = make_store(installation_id)
        elif sel.name in ("inventoryItem", "product"):
            value, error = _item_lookup(sel)
            if error is not None:
                errors.append(error)
        else:
            value, error = _order_lookup(sel, installation_id, api_version, orders)
            if error is not None:
                errors.append(error)
        data[sel.alias] = project(value, sel.selections)
    document: dict[str, Any] = {"data": data}
    if errors:
        document["errors"] = errors
    label = ",".join(sorted({f.name for f in fields if f.name != "__typename"}))
    return 200, document, label
