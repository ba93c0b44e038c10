"""The HTTP request handler of the sandbox: routing, parsing and the wire format of each endpoint.

State lives in :class:`sandbox.server.BuyWithPrimeSandbox`; this module only reads requests and
writes responses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

from sandbox.graphql import error_document, execute
from sandbox.oauth import AUTHORIZE_PARAMS, AuthorizeError, OAuthError, TokenPair
from sandbox.pages import consent_page
from sandbox.signing import token_param_separator

if TYPE_CHECKING:
    from sandbox.server import BuyWithPrimeSandbox

__all__ = ["SandboxHandler"]

AUTHORIZE_PATH = "/marketplace/authorize"
MAX_BODY = 1 << 20


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _single_values(raw: str) -> dict[str, str]:
    """Parse a query string / form body, refusing repeated parameters."""
    try:
        parsed = parse_qs(raw, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError as exc:
        raise _BadRequest(400, "parameters are not valid UTF-8") from exc
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise _BadRequest(400, f"parameter {repeated[0]!r} is repeated")
    return {name: values[0] for name, values in parsed.items()}


class SandboxHandler(BaseHTTPRequestHandler):
    sandbox: ClassVar[BuyWithPrimeSandbox]
    protocol_version = "HTTP/1.1"
    server_version = "BuyWithPrimeSandbox/1.0"
    timeout = 30
    # headers and body are written separately: without this, Nagle + delayed ACK stall ~40 ms per request
    disable_nagle_algorithm = True
    entry: dict[str, Any] | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the ``requests`` log (without secrets) replaces the access log."""

    # --- plumbing ------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise _BadRequest(411, "chunked bodies are not supported; send Content-Length")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError as exc:
            raise _BadRequest(400, "bad Content-Length") from exc
        if length < 0 or length > MAX_BODY:
            raise _BadRequest(413, "body too large")
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        if self.entry is not None:
            self.entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(document).encode(), "application/json", headers)

    def _text(self, status: int, message: str) -> None:
        self._send(status, (message + "\n").encode(), "text/plain; charset=utf-8")

    def _route(self) -> None:
        self.entry = None  # one handler instance serves every request of a keep-alive connection
        path = urlsplit(self.path).path
        routes: dict[str, dict[str, Callable[[], None]]] = {
            AUTHORIZE_PATH: {"GET": self._authorize_page, "POST": self._authorize_submit},
            "/token": {"POST": self._token},
            "/graphql": {"POST": self._graphql},
            "/": {"GET": self._health},
        }
        methods = routes.get(path)
        try:
            if methods is None:
                self._observe_plain()
                self.close_connection = True  # any unread body must not become the next request
                self._json(404, {"message": f"no route for {path}"}, {"Connection": "close"})
            elif self.command not in methods:
                self._observe_plain()
                self.close_connection = True
                allow = {"Allow": ", ".join(methods), "Connection": "close"}
                self._json(405, {"message": "method not allowed"}, allow)
            else:
                methods[self.command]()
        except _BadRequest as exc:
            if self.entry is None:
                self._observe_plain()
            self.close_connection = True
            self._send(
                exc.status,
                (str(exc) + "\n").encode(),
                "text/plain; charset=utf-8",
                {"Connection": "close"},
            )

    def _observe_plain(self) -> None:
        self.entry = self.sandbox.record_request(self, [], [])

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()

    def _health(self) -> None:
        self.entry = self.sandbox.record_request(self, ["health"], [])
        self._json(200, {"status": "ok", "service": "buy-with-prime-sandbox"})

    # --- authorize -----------------------------------------------------------------------------
    def _authorize_page(self) -> None:
        time.sleep(self.sandbox.faults.latency("authorize"))
        self.entry = self.sandbox.record_request(self, ["authorize"], [])
        params = _single_values(urlsplit(self.path).query)
        try:
            self.sandbox.oauth.validate_authorize(params)
        except AuthorizeError as exc:
            self._text(400, f"invalid authorize request: {exc}")
            return
        page = consent_page(params, AUTHORIZE_PARAMS, self.sandbox.default_installation_id, "Sandbox store")
        self._send(200, page.encode(), "text/html; charset=utf-8")

    def _authorize_submit(self) -> None:
        time.sleep(self.sandbox.faults.latency("authorize"))
        body = self._read_body()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _BadRequest(400, "form body is not valid UTF-8") from exc
        form = _single_values(text)
        action = form.get("action", "approve")
        self.entry = self.sandbox.record_request(self, [f"authorize:{action}"], sorted(form))
        try:
            self.sandbox.oauth.validate_authorize(form)
            if action == "deny":
                uri = form["redirect_uri"]
                query = urlencode([("error", "access_denied"), ("state", form["state"])])
                location = uri + token_param_separator(uri) + query
            elif action == "approve":
                location = self.sandbox.approve_redirect(
                    form, form.get("installation_id", "").strip(), form.get("store_name", "")
                )
            else:
                raise AuthorizeError("action must be approve or deny")
        except AuthorizeError as exc:
            self._text(400, f"invalid authorize request: {exc}")
            return
        self._send(302, b"", "text/plain; charset=utf-8", {"Location": location})

    # --- token ---------------------------------------------------------------------------------
    def _token(self) -> None:
        sandbox = self.sandbox
        time.sleep(sandbox.faults.latency("token"))
        body = self._read_body()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        parsed = parse_qs(text, keep_blank_values=True)
        grant = (parsed.get("grant_type") or ["none"])[0]
        self.entry = sandbox.record_request(self, ["token", f"token:{grant}"], sorted(parsed))
        fault = sandbox.faults.take("token")
        if fault is not None:
            self._send(fault.status, fault.body, fault.content_type, fault.headers)
            return
        try:
            pair = self._token_grant(body)
        except OAuthError as exc:
            self._json(exc.status, {"error": exc.error, "error_description": exc.description})
            return
        self._json(200, sandbox.token_response(pair), {"Pragma": "no-cache"})

    def _token_grant(self, body: bytes) -> TokenPair:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise OAuthError(400, "invalid_request", "body must be form-encoded")
        try:
            form = _single_values(body.decode("utf-8"))
        except (UnicodeDecodeError, _BadRequest) as exc:
            raise OAuthError(400, "invalid_request", str(exc)) from exc
        oauth = self.sandbox.oauth
        oauth.authenticate_client(form.get("client_id"), form.get("client_secret"))
        client_id = form["client_id"]
        grant = form.get("grant_type")
        if grant == "authorization_code":
            if not form.get("code"):
                raise OAuthError(400, "invalid_request", "code is required")
            return oauth.exchange_code(
                client_id=client_id,
                code=form["code"],
                redirect_uri=form.get("redirect_uri"),
                code_verifier=form.get("code_verifier"),
            )
        if grant == "refresh_token":
            if not form.get("refresh_token"):
                raise OAuthError(400, "invalid_request", "refresh_token is required")
            return oauth.refresh(client_id=client_id, refresh_token=form["refresh_token"])
        if not grant:
            raise OAuthError(400, "invalid_request", "grant_type is required")
        raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")

    # --- graphql -------------------------------------------------------------------------------
    def _graphql(self) -> None:
        """GraphQL endpoint.  Checks, in order:

        1. an injected fault (``fail_next``), then an injected throttle (HTTP 200 + ThrottlingError);
        2. ``Authorization`` header absent: **HTTP 401** + AccessDeniedError
           ``MISSING_AUTHORIZATION`` (the docs do not say; 401 is what an API gateway in front of
           the service does for an unauthenticated call);
        3. not ``Bearer <token>``, an unknown, revoked or expired token, a missing
           ``X-Omni-InstallationId`` or one that is not the token's installation: **HTTP 200** +
           AccessDeniedError (the docs: HTTP 200 can carry ``errors[]``), ``errorCode`` one of
           INVALID_ACCESS_TOKEN, REVOKED_ACCESS_TOKEN, EXPIRED_ACCESS_TOKEN,
           MISSING_INSTALLATION_ID, INSTALLATION_ID_MISMATCH;
        4. ``Content-Type`` not JSON: 415; body not JSON: 400 ValidationError;
        5. unknown field, fragments or syntax error: HTTP 200 + ValidationError.
        """
        sandbox = self.sandbox
        time.sleep(sandbox.faults.latency("graphql"))
        body = self._read_body()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        fields = sorted(parsed) if isinstance(parsed, dict) else []
        self.entry = sandbox.record_request(self, ["graphql"], fields)
        fault = sandbox.faults.take("graphql")
        if fault is not None:
            self._send(fault.status, fault.body, fault.content_type, fault.headers)
            return
        if sandbox.faults.take_throttle(self.headers.get("X-Omni-InstallationId", "")):
            self._json(
                200,
                error_document(
                    "Rate exceeded: send the request again using exponential backoff",
                    "ThrottlingError",
                    "RATE_EXCEEDED",
                ),
            )
            return
        authorization = self.headers.get("Authorization")
        if authorization is None:
            self._json(
                401, error_document("Authorization header is required", "AccessDeniedError", "MISSING_AUTHORIZATION")
            )
            return
        denied = self._access_denied(authorization)
        if denied is not None:
            self._json(200, error_document(denied[1], "AccessDeniedError", denied[0]))
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            self._json(
                415, error_document("Content-Type must be application/json", "ValidationError", "UNSUPPORTED_MEDIA")
            )
            return
        installation_id = self.headers.get("X-Omni-InstallationId", "")
        status, document, label = execute(
            body, installation_id, self.headers.get("x-api-version"), sandbox.orders_snapshot()
        )
        if label:
            sandbox.count(f"graphql:{label}")
        time.sleep(sandbox.faults.take_hold())  # the answer is computed: held, it carries the old state
        self._json(status, document)

    def _access_denied(self, authorization: str) -> tuple[str, str] | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "INVALID_ACCESS_TOKEN", "Authorization must be 'Bearer <access token>'"
        record, problem = self.sandbox.oauth.check_access_token(token.strip())
        if record is None or problem:
            return problem, "The access token is invalid, revoked or expired"
        installation_id = self.headers.get("X-Omni-InstallationId")
        if not installation_id:
            return "MISSING_INSTALLATION_ID", "X-Omni-InstallationId header is required"
        if installation_id != record.installation_id:
            return "INSTALLATION_ID_MISMATCH", "The access token belongs to another installation"
        return None
