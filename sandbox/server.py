"""``BuyWithPrimeSandbox``: a local, threaded HTTP stand-in for Buy with Prime.

Endpoints (all under ``base_url``):

``GET  /marketplace/authorize``
    Validates ``response_type=code``, ``client_id``, ``redirect_uri`` (byte-for-byte equal to the
    registered Install URL when one is registered), ``state``, ``code_challenge`` (43-128 base64url
    characters) and ``code_challenge_method=S256``; a bad request gets a plain-text 400.  A valid
    one gets a consent page whose ``#approve`` button POSTs the parameters back.
``POST /marketplace/authorize``
    Approve: 302 to ``redirect_uri?code=..&state=..&verification-token=<JWT>``, the token signed
    over that exact URL (no body) for the chosen installation.  Deny: 302 to
    ``redirect_uri?error=access_denied&state=..`` (unsigned).
``POST /token``
    Form-encoded, client credentials in the body (HTTP Basic is not read).  ``authorization_code``
    with PKCE S256 and ``refresh_token`` with rotation (the presented refresh token dies).  Errors
    per RFC 6749: 401 ``invalid_client``, 400 ``invalid_request`` / ``invalid_grant`` /
    ``unsupported_grant_type``.
``POST /graphql``
    See :meth:`sandbox.handler.SandboxHandler._graphql` for the authentication rules.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from sandbox.faults import Faults
from sandbox.handler import AUTHORIZE_PATH, SandboxHandler
from sandbox.oauth import AuthorizeError, IssuedAccessToken, OAuthState, TokenPair
from sandbox.signing import VerificationSigner, token_param_separator

__all__ = ["BuyWithPrimeSandbox"]

REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "verification-token"})


class BuyWithPrimeSandbox:
    """A local Buy with Prime: authorize page, token endpoint, GraphQL API, request signing.

    ``redirect_uri=None`` accepts any absolute http(s) Install URL.  ``include_expires_in=False``
    omits ``expires_in`` from token responses (tokens still expire after ``access_token_ttl``).
    ``rotate_refresh_tokens=False`` keeps refresh tokens valid across refreshes (rotation is
    UNCONFIRMED upstream; rotating is the strict default).  ``clock`` drives code and token expiry.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        redirect_uri: str | None = None,
        *,
        signer: VerificationSigner | None = None,
        access_token_ttl: int = 900,
        include_expires_in: bool = True,
        code_ttl: int = 300,
        rotate_refresh_tokens: bool = True,
        default_installation_id: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer or VerificationSigner()
        self.include_expires_in = include_expires_in
        self.default_installation_id = default_installation_id or str(uuid.uuid4())
        self.oauth = OAuthState(
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            access_token_ttl=access_token_ttl,
            code_ttl=code_ttl,
            rotate_refresh_tokens=rotate_refresh_tokens,
            clock=clock,
        )
        self.faults = Faults()
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.api_versions: list[str] = []
        self.installations: dict[str, str] = {}
        self._orders: dict[tuple[str, str], dict[str, Any] | None] = {}

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> BuyWithPrimeSandbox:
        if self._server is not None:
            return self
        handler = type("BoundHandler", (SandboxHandler,), {"sandbox": self})
        server = ThreadingHTTPServer((self._host, self._port), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="buy-with-prime-sandbox",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> BuyWithPrimeSandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- addresses -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def authorize_url(self) -> str:
        return self.base_url + AUTHORIZE_PATH

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def graphql_url(self) -> str:
        return self.base_url + "/graphql"

    @property
    def client_id(self) -> str:
        return self.oauth.client_id

    @property
    def public_key_pem(self) -> str:
        return self.signer.public_key_pem

    # --- programmatic flow ---------------------------------------------------------------------
    def authorize(
        self,
        installation_id: str,
        code_challenge: str,
        redirect_uri: str,
        state: str,
        client_id: str | None = None,
        *,
        store_name: str = "",
    ) -> str:
        """What approving the consent page does, without a browser: the signed redirect URL.

        Raises :class:`sandbox.oauth.AuthorizeError` for a request the page would refuse.
        """
        params = {
            "response_type": "code",
            "client_id": self.oauth.client_id if client_id is None else client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        self.oauth.validate_authorize(params)
        return self.approve_redirect(params, installation_id, store_name)

    def approve_redirect(self, params: dict[str, str], installation_id: str, store_name: str) -> str:
        if not installation_id:
            raise AuthorizeError("installation_id is required")
        with self._lock:
            self.installations[installation_id] = store_name
        code = self.oauth.issue_code(
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            code_challenge=params["code_challenge"],
            installation_id=installation_id,
        )
        redirect_uri = params["redirect_uri"]
        url = (
            redirect_uri + token_param_separator(redirect_uri) + urlencode([("code", code), ("state", params["state"])])
        )
        return self.signer.sign_url(url, installation_id)

    def issue_tokens(self, installation_id: str) -> dict[str, Any]:
        """A token response for ``installation_id``, as if it had just installed the app."""
        return self.token_response(self.oauth.issue_tokens(installation_id))

    def token_response(self, pair: TokenPair) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "token_type": "bearer",
        }
        if self.include_expires_in:
            body["expires_in"] = pair.expires_in
        return body

    # --- fault injection and administration ----------------------------------------------------
    def fail_next(
        self,
        endpoint: str,
        status: int,
        times: int = 1,
        body: bytes | str | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests to ``endpoint`` ("token" or "graphql") with
        ``status`` and ``body`` (default: an OAuth error / a GraphQL errors[] document)."""
        self.faults.fail_next(endpoint, status, times, body, headers)

    def hold_next_graphql_answer(self, seconds: float) -> None:
        """The next GraphQL request is answered with the state as of its arrival, but only after
        ``seconds``: a slow answer carrying an older state than a later request's."""
        self.faults.hold_next(seconds)

    def throttle_next(self, times: int = 1) -> None:
        """Answer the next ``times`` GraphQL requests with HTTP 200 + a ThrottlingError."""
        self.faults.throttle_next(times)

    def throttle_installation(self, installation_id: str, throttled: bool = True) -> None:
        """Answer every GraphQL request of one installation with a ThrottlingError (a per-tenant rate
        limit: a merchant's flash sale) until called again with `throttled=False`."""
        self.faults.throttle_installation(installation_id, throttled)

    def latency(self, endpoint: str, seconds: float) -> None:
        """Delay every request to ``endpoint`` ("authorize", "token", "graphql"); 0 turns off."""
        self.faults.set_latency(endpoint, seconds)

    def revoke_refresh_tokens(self, installation_id: str) -> int:
        return self.oauth.revoke_refresh_tokens(installation_id)

    def revoke_access_tokens(self, installation_id: str) -> int:
        return self.oauth.revoke_access_tokens(installation_id)

    @property
    def replayed_refresh_tokens(self) -> int:
        """How often a refresh token was presented again after it had been redeemed (must stay 0)."""
        return self.oauth.replayed_refresh_tokens

    def issued_access_tokens(self) -> dict[str, IssuedAccessToken]:
        """Every access token issued so far -> (installation_id, client_id, expires_at)."""
        return self.oauth.issued_access_tokens()

    def put_order(self, installation_id: str, order_id: str, order: dict[str, Any] | None) -> None:
        """Serve ``order`` for this installation's ``order_id``; ``None`` makes it not found.
        Other order IDs get generated orders."""
        with self._lock:
            self._orders[(installation_id, order_id)] = order

    def reset_observations(self) -> None:
        with self._lock:
            self.calls.clear()
            self.requests.clear()
            self.api_versions.clear()

    # --- request handling (called from server threads) ----------------------------------------
    def record_request(self, handler: BaseHTTPRequestHandler, counters: list[str], fields: list[str]) -> dict[str, Any]:
        parts = urlsplit(handler.path)
        entry: dict[str, Any] = {
            "method": handler.command,
            "path": parts.path,
            "query_fields": sorted(parse_qs(parts.query, keep_blank_values=True)),
            "headers": {
                name: ("<redacted>" if name.lower() in REDACTED_HEADERS else value)
                for name, value in handler.headers.items()
            },
            "fields": fields,
            "status": None,
        }
        with self._lock:
            self.calls.update(counters)
            self.requests.append(entry)
            version = handler.headers.get("x-api-version")
            if version is not None:
                self.api_versions.append(version)
        return entry

    def count(self, counter: str) -> None:
        with self._lock:
            self.calls[counter] += 1

    def orders_snapshot(self) -> dict[tuple[str, str], dict[str, Any] | None]:
        with self._lock:
            return dict(self._orders)
