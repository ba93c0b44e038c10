"""API Gateway HTTP API (payload 2.0) requests and responses, without a web framework."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import parse_qsl

# The code, state and verification token travel in URLs: never let them leak through Referer,
# caches or framing, and never let a page run script. No page may be framed (clickjacking): Buy with
# Prime opens these URLs in the merchant's window, not in a frame.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Strict-Transport-Security": "max-age=31536000",
}


class BadRequestError(ValueError):
    """The event is not a usable HTTP request (e.g. a body that is not valid base64)."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: dict[str, str]
    cookies: dict[str, str]
    body: bytes
    domain_name: str
    query: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> HttpRequest:
        context = event.get("requestContext") or {}
        http = context.get("http") or {}
        raw_query = event.get("rawQueryString") or ""
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        body_text = event.get("body") or ""
        try:
            body = base64.b64decode(body_text, validate=True) if event.get("isBase64Encoded") else body_text.encode()
        except (binascii.Error, ValueError):
            raise BadRequestError("the request body is not valid base64") from None
        return cls(
            method=str(http.get("method") or "GET").upper(),
            raw_path=str(event.get("rawPath") or http.get("path") or "/"),
            raw_query=raw_query,
            headers=headers,
            cookies=_cookies(event.get("cookies"), headers.get("cookie")),
            body=body,
            domain_name=str(context.get("domainName") or headers.get("host") or ""),
            # first value wins; a repeated parameter never overrides what was checked
            query=dict(reversed(parse_qsl(raw_query, keep_blank_values=True))),
        )


def _cookies(cookie_list: list[str] | None, header: str | None) -> dict[str, str]:
    """Payload 2.0 moves Cookie headers into `cookies`; accept either form."""
    pairs = list(cookie_list or []) + ([part for part in header.split(";")] if header else [])
    jar: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.strip().partition("=")
        if sep and name and name not in jar:
            jar[name] = value
    return jar


def html_response(
    status: int,
    title: str,
    message: str,
    *,
    app_name: str,
    extra_html: str = "",
    cookies: list[str] | None = None,
) -> dict[str, Any]:
    """A small self-contained page named for the app; `title`, `message` and `app_name` are escaped
    here, `extra_html` must be safe."""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} - {escape(app_name)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#0f1111}"
        "h1{font-size:1.5rem}dl{display:grid;grid-template-columns:max-content auto;gap:.4rem 1rem}"
        "dt{font-weight:600}.ok{color:#067d62}.warn{color:#b12704}a{color:#007185}.app{color:#565959;margin:0}"
        f'</style></head><body><p class="app">{escape(app_name)}</p><h1>{escape(title)}</h1>'
        f"<p>{escape(message)}</p>{extra_html}</body></html>"
    )
    return response(status, body, content_type="text/html; charset=utf-8", cookies=cookies)


def json_response(status: int, payload: dict[str, Any]) -> dict[str, Any]:
    return response(status, json.dumps(payload), content_type="application/json")


def redirect(location: str, *, cookies: list[str] | None = None) -> dict[str, Any]:
    answer = response(302, "", content_type="text/plain")
    answer["headers"]["Location"] = location
    if cookies:
        answer["cookies"] = cookies
    return answer


def response(status: int, body: str, *, content_type: str, cookies: list[str] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "statusCode": status,
        "headers": {"Content-Type": content_type, **SECURITY_HEADERS},
        "body": body,
        "isBase64Encoded": False,
    }
    if cookies:
        answer["cookies"] = cookies
    return answer
