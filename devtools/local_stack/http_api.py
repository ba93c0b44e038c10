"""What API Gateway's HTTP API does around a Lambda proxy integration (payload format 2.0): route
matching from the template's HttpApi events, the event it sends, and how it reads the answer."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from devtools.apigw import payload_v2
from devtools.local_stack.functions import function_events, functions

NOT_FOUND_BODY = b'{"message":"Not Found"}'
INTERNAL_ERROR_BODY = b'{"message":"Internal Server Error"}'
_TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded)|[^;]*\+(json|xml))", re.I)


@dataclass(frozen=True)
class Route:
    method: str  # upper case, or ANY
    path: str | None  # None for the $default route
    function: str  # logical ID of the function behind it
    payload_format: str = "2.0"

    @property
    def key(self) -> str:
        return "$default" if self.path is None else f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters when this route serves (method, decoded path), else None."""
        if self.method not in {"ANY", method}:
            return None
        if self.path is None:
            return {}
        pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", pattern)
        found = re.fullmatch(pattern, path)
        return found.groupdict() if found else None

    def specificity(self) -> tuple[int, int, int]:
        """API Gateway tries exact routes, then ones with parameters, greedy ones, $default last."""
        if self.path is None:
            return (3, 0, 0)
        greedy = "+}" in self.path
        has_parameters = "{" in self.path
        return (2 if greedy else 1 if has_parameters else 0, -len(self.path), 0 if self.method != "ANY" else 1)


def routes_from_template(template: Mapping[str, Any]) -> list[Route]:
    """Every HttpApi event of every function, most specific first."""
    routes = []
    for function in functions(template):
        for name, properties in function_events(template, function, "HttpApi").items():
            fmt = str(properties.get("PayloadFormatVersion", "2.0"))
            if fmt != "2.0":
                raise ValueError(f"{function}.{name}: payload format {fmt} is not emulated (2.0 only)")
            path = properties.get("Path")
            method = str(properties.get("Method", "ANY")).upper()
            routes.append(Route("ANY" if method in {"ANY", "*"} else method, path, function))
    return sorted(routes, key=Route.specificity)


def find_route(routes: list[Route], method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
    decoded = unquote(raw_path)
    for route in routes:
        parameters = route.match(method.upper(), decoded)
        if parameters is not None:
            return route, parameters
    return None


def is_text(body: bytes, headers: Mapping[str, str]) -> bool:
    """Sent as text when it is UTF-8, not content-encoded, and of a textual (or unstated) type."""
    if headers.get("content-encoding"):
        return False
    content_type = headers.get("content-type", "")
    if content_type and not _TEXT_TYPES.match(content_type):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def build_event(
    *,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    protocol: str,
    route: Route,
    path_parameters: Mapping[str, str],
    account_id: str,
    api_id: str = "local",
) -> dict[str, Any]:
    """The payload 2.0 event for one request: raw path and query exactly as received, header
    names lower-cased and repeats joined with commas, Cookie headers moved to `cookies`."""
    raw_path, _, raw_query = target.partition("?")
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[lower] = f"{joined[lower]},{value}" if lower in joined else value
    host = joined.get("host", "")
    joined.setdefault("x-forwarded-for", source_ip)
    joined.setdefault("x-forwarded-proto", "http")
    joined.setdefault("x-forwarded-port", host.rpartition(":")[2] if ":" in host else "80")
    return payload_v2(
        method=method,
        raw_path=raw_path,
        raw_query=raw_query,
        headers=joined,
        cookies=cookies,
        body=body,
        body_is_text=is_text(body, joined),
        route_key=route.key,
        source_ip=source_ip,
        protocol=protocol,
        account_id=account_id,
        api_id=api_id,
        path_parameters=path_parameters,
    )


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def read_answer(result: Any) -> HttpAnswer:
    """The HTTP response API Gateway makes of a function's payload 2.0 result."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # no statusCode: API Gateway assumes 200, JSON, and the whole result as the body
        text = result if isinstance(result, str) else json.dumps(result)
        return HttpAnswer(200, [("Content-Type", "application/json")], text.encode("utf-8"))
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    return HttpAnswer(int(result["statusCode"]), headers, body)
