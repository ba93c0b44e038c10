"""Build API Gateway HTTP API (payload format 2.0) events the way the real API does."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit


def http_event(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    cookies: list[str] | None = None,
    base64_body: bool | None = None,
    route_key: str | None = None,
) -> dict[str, Any]:
    """An event for `url` exactly as received: raw path and raw query are never re-encoded.

    The body is sent base64-encoded when it is not UTF-8 text (as API Gateway does for binary
    payloads) or when `base64_body` says so.
    """
    parts = urlsplit(url)
    path = parts.path or "/"
    all_headers = {
        "host": parts.netloc,
        "user-agent": "devtools/1.0",
        **{k.lower(): v for k, v in (headers or {}).items()},
    }
    if base64_body is None:
        try:
            body.decode("utf-8")
            base64_body = False
        except UnicodeDecodeError:
            base64_body = True
    return payload_v2(
        method=method,
        raw_path=path,
        raw_query=parts.query,
        headers=all_headers,
        cookies=cookies or [],
        body=body,
        body_is_text=not base64_body,
        route_key=route_key or f"{method.upper()} {path}",
        api_id=parts.hostname.split(".")[0] if parts.hostname else "local",
    )


def payload_v2(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: dict[str, str],
    cookies: list[str],
    body: bytes,
    body_is_text: bool,
    route_key: str,
    source_ip: str = "203.0.113.10",
    protocol: str = "HTTP/1.1",
    account_id: str = "123456789012",
    api_id: str = "local",
    path_parameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The one builder of payload format 2.0 events (in-process drivers and the local HTTP API's
    front): `headers` already lower-cased and joined, `cookies` already split out of them."""
    host = headers.get("host", "")
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": host,
            "domainPrefix": host.split(":")[0].split(".")[0] or "local",
            "http": {
                "method": method.upper(),
                "path": raw_path,
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": base64.b64encode(secrets.token_bytes(12)).decode("ascii")[:15] + "=",
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": bool(body) and not body_is_text,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        values: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            values[name] = f"{values[name]},{value}" if name in values else value
        event["queryStringParameters"] = values
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        event["body"] = body.decode("utf-8") if body_is_text else base64.b64encode(body).decode("ascii")
    return event


class LambdaContext:
    """The few attributes Powertools reads from a Lambda context."""

    function_version = "$LATEST"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_stream_name = "local"

    def __init__(self, function_name: str = "OAuthFunction", timeout: float = 29.0) -> None:
        self.function_name = function_name
        self._ends_at = time.monotonic() + timeout
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends_at - time.monotonic()) * 1000))
