"""Build API Gateway HTTP API (payload format 2.0) events the way the real API does."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import urlsplit


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
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or f"{method.upper()} {path}",
        "rawPath": path,
        "rawQueryString": parts.query,
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": parts.hostname.split(".")[0] if parts.hostname else "local",
            "domainName": parts.netloc,
            "domainPrefix": (parts.hostname or "local").split(".")[0],
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": all_headers["user-agent"],
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route_key or f"{method.upper()} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": bool(body) and base64_body,
    }
    if cookies:
        event["cookies"] = cookies
    if body:
        event["body"] = base64.b64encode(body).decode("ascii") if base64_body else body.decode("utf-8")
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
