"""A deliberately small GraphQL reader: enough to answer the queries the integration sends.

Supports one or more operations (``query`` only, or the anonymous ``{ ... }`` form), variable
definitions (skipped: variables are taken from the request as given), field aliases, arguments with
every literal kind and ``$variables``, nested selection sets, and ``__typename``.  Fragments,
directives with effects, mutations and subscriptions are refused with :class:`GraphQLSyntaxError`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Field", "GraphQLSyntaxError", "parse_operation", "project"]


class GraphQLSyntaxError(ValueError):
    """The query cannot be read (reported to the client as a ValidationError)."""


@dataclass(frozen=True)
class Field:
    name: str
    alias: str
    args: dict[str, Any] = field(default_factory=dict)
    selections: tuple[Field, ...] | None = None


_TOKEN = re.compile(
    r"""
    (?P<skip>[\s,\ufeff]+|\#[^\n\r]*)
  | (?P<spread>\.\.\.)
  | (?P<block>\"\"\"(?:\\\"\"\"|[^\"]|\"(?!\"\"))*\"\"\")
  | (?P<string>"(?:\\.|[^"\\\n\r])*")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<punct>[!$&()\:=@\[\]{|}])
    """,
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise GraphQLSyntaxError(f"Syntax Error: unexpected character {text[pos]!r} at {pos}")
        kind = match.lastgroup or ""
        if kind != "skip":
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, variables: dict[str, Any]) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.variables = variables

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("eof", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        tok_kind, tok_value = self.peek()
        if (value is not None and tok_value != value) or (kind is not None and tok_kind != kind):
            want = value or kind
            raise GraphQLSyntaxError(f"Syntax Error: expected {want}, found {tok_value or 'EOF'}")
        self.pos += 1
        return tok_value

    def at(self, value: str) -> bool:
        kind, tok = self.peek()
        return tok == value and kind in ("punct", "name", "spread")

    def operations(self) -> list[tuple[str | None, tuple[Field, ...]]]:
        ops: list[tuple[str | None, tuple[Field, ...]]] = []
        while self.peek()[0] != "eof":
            if self.at("{"):
                ops.append((None, self.selection_set()))
                continue
            keyword = self.take(kind="name")
            if keyword == "fragment":
                raise GraphQLSyntaxError("fragments are not supported by the sandbox")
            if keyword != "query":
                raise GraphQLSyntaxError(f"operation type {keyword!r} is not supported")
            name = self.take(kind="name") if self.peek()[0] == "name" else None
            if self.at("("):
                self.skip_balanced("(", ")")
            self.directives()
            ops.append((name, self.selection_set()))
        if not ops:
            raise GraphQLSyntaxError("Syntax Error: the document holds no operation")
        return ops

    def skip_balanced(self, opening: str, closing: str) -> None:
        depth = 0
        while True:
            kind, tok = self.peek()
            if kind == "eof":
                raise GraphQLSyntaxError(f"Syntax Error: unbalanced {opening}")
            self.pos += 1
            if kind == "punct" and tok == opening:
                depth += 1
            elif kind == "punct" and tok == closing:
                depth -= 1
                if depth == 0:
                    return

    def directives(self) -> None:
        while self.at("@"):
            self.take("@")
            self.take(kind="name")
            if self.at("("):
                self.skip_balanced("(", ")")

    def selection_set(self) -> tuple[Field, ...]:
        self.take("{")
        fields: list[Field] = []
        while not self.at("}"):
            if self.peek()[0] == "spread":
                raise GraphQLSyntaxError("fragments are not supported by the sandbox")
            fields.append(self.field())
        self.take("}")
        if not fields:
            raise GraphQLSyntaxError("Syntax Error: empty selection set")
        return tuple(fields)

    def field(self) -> Field:
        alias = name = self.take(kind="name")
        if self.at(":"):
            self.take(":")
            name = self.take(kind="name")
        args: dict[str, Any] = {}
        if self.at("("):
            self.take("(")
            while not self.at(")"):
                arg = self.take(kind="name")
                self.take(":")
                args[arg] = self.value()
            self.take(")")
        self.directives()
        selections = self.selection_set() if self.at("{") else None
        return Field(name=name, alias=alias, args=args, selections=selections)

    def value(self) -> Any:
        kind, tok = self.peek()
        if kind == "punct" and tok == "$":
            self.take("$")
            return self.variables.get(self.take(kind="name"))
        if kind == "punct" and tok == "[":
            self.take("[")
            items = []
            while not self.at("]"):
                items.append(self.value())
            self.take("]")
            return items
        if kind == "punct" and tok == "{":
            self.take("{")
            obj: dict[str, Any] = {}
            while not self.at("}"):
                key = self.take(kind="name")
                self.take(":")
                obj[key] = self.value()
            self.take("}")
            return obj
        self.pos += 1
        return _scalar(kind, tok)


def _scalar(kind: str, tok: str) -> Any:
    if kind in ("string", "number"):
        return json.loads(tok)
    if kind == "block":
        return tok[3:-3]
    if kind != "name":
        raise GraphQLSyntaxError(f"Syntax Error: unexpected {tok or 'EOF'}")
    return {"true": True, "false": False, "null": None}.get(tok, tok)


def parse_operation(
    query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
) -> tuple[Field, ...]:
    """The top-level fields of the operation to run, with arguments resolved."""
    ops = _Parser(query, variables or {}).operations()
    if operation_name is not None:
        for name, fields in ops:
            if name == operation_name:
                return fields
        raise GraphQLSyntaxError(f"Unknown operation named {operation_name!r}")
    if len(ops) > 1:
        raise GraphQLSyntaxError("operationName is required when the document has several")
    return ops[0][1]


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
