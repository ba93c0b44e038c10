"""OAuth 2.0 authorization-code + PKCE (S256) state of the sandbox: codes and tokens.

Thread-safe: every method takes the instance lock, so two concurrent refreshes with the same
refresh token cannot both succeed.  Time comes from an injectable ``clock``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "AuthorizeError",
    "IssuedAccessToken",
    "OAuthError",
    "OAuthState",
    "TokenPair",
    "pkce_challenge",
]

_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43,128}$")
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def pkce_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)) without padding (RFC 7636 S256)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class AuthorizeError(ValueError):
    """An authorize request the sandbox refuses (shown as a plain 400 message)."""


class OAuthError(Exception):
    """A token-endpoint error: HTTP ``status`` with body ``{"error": error, ...}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description


@dataclass(frozen=True)
class IssuedAccessToken:
    installation_id: str
    client_id: str
    expires_at: float
    revoked: bool = False


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    installation_id: str


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    code_challenge: str
    installation_id: str
    expires_at: float
    used: bool = False


@dataclass
class _Refresh:
    installation_id: str
    client_id: str
    status: str = "active"  # active | used | revoked


class OAuthState:
    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str | None,
        access_token_ttl: int,
        code_ttl: int,
        rotate_refresh_tokens: bool,
        clock: Callable[[], float],
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.access_token_ttl = access_token_ttl
        self.code_ttl = code_ttl
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, IssuedAccessToken] = {}
        self._refresh: dict[str, _Refresh] = {}
        # Presentations of an already-redeemed refresh token: what a correct client never does.
        self.replayed_refresh_tokens = 0

    # --- authorize -----------------------------------------------------------------------------
    def validate_authorize(self, params: Mapping[str, str]) -> None:
        """Raise :class:`AuthorizeError` unless ``params`` form a valid authorize request."""
        if params.get("response_type") != "code":
            raise AuthorizeError("response_type must be 'code'")
        if not params.get("client_id"):
            raise AuthorizeError("client_id is required")
        if not hmac.compare_digest(params["client_id"].encode(), self.client_id.encode()):
            raise AuthorizeError("unknown client_id")
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri:
            raise AuthorizeError("redirect_uri is required")
        if self.redirect_uri is not None and redirect_uri != self.redirect_uri:
            raise AuthorizeError("redirect_uri does not match the registered Install URL")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise AuthorizeError("redirect_uri must be an absolute http(s) URL without fragment")
        if not params.get("state"):
            raise AuthorizeError("state is required")
        if not _CHALLENGE.match(params.get("code_challenge", "")):
            raise AuthorizeError("code_challenge must be 43-128 base64url characters")
        if params.get("code_challenge_method") != "S256":
            raise AuthorizeError("code_challenge_method must be 'S256'")

    def issue_code(self, *, client_id: str, redirect_uri: str, code_challenge: str, installation_id: str) -> str:
        code = "ANcode" + secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(
                client_id=client_id,
                redirect_uri=redirect_uri,
                code_challenge=code_challenge,
                installation_id=installation_id,
                expires_at=self.clock() + self.code_ttl,
            )
        return code

    # --- token ---------------------------------------------------------------------------------
    def authenticate_client(self, client_id: str | None, client_secret: str | None) -> None:
        ok_id = hmac.compare_digest((client_id or "").encode(), self.client_id.encode())
        ok_secret = hmac.compare_digest((client_secret or "").encode(), self._client_secret.encode())
        if not (client_id and client_secret and ok_id and ok_secret):
            raise OAuthError(401, "invalid_client", "client authentication failed")

    def exchange_code(
        self, *, client_id: str, code: str, redirect_uri: str | None, code_verifier: str | None
    ) -> TokenPair:
        """Redeem ``code``.  Any redemption attempt by the authenticated client burns the code."""
        with self._lock:
            record = self._codes.get(code)
            if record is None or record.used:
                raise OAuthError(400, "invalid_grant", "authorization code is invalid or used")
            record.used = True
            if record.expires_at <= self.clock():
                raise OAuthError(400, "invalid_grant", "authorization code has expired")
            if record.client_id != client_id:
                raise OAuthError(400, "invalid_grant", "code was issued to another client")
            if redirect_uri != record.redirect_uri:
                raise OAuthError(400, "invalid_grant", "redirect_uri does not match")
            if not code_verifier or not _VERIFIER.match(code_verifier):
                raise OAuthError(400, "invalid_grant", "code_verifier is missing or malformed")
            if not hmac.compare_digest(pkce_challenge(code_verifier).encode(), record.code_challenge.encode()):
                raise OAuthError(400, "invalid_grant", "code_verifier does not match")
            return self._issue_locked(record.installation_id, client_id)

    def refresh(self, *, client_id: str, refresh_token: str) -> TokenPair:
        with self._lock:
            record = self._refresh.get(refresh_token)
            if record is not None and record.status == "used":
                self.replayed_refresh_tokens += 1  # presented again after it was redeemed
            if record is None or record.status != "active" or record.client_id != client_id:
                raise OAuthError(400, "invalid_grant", "refresh token is invalid")
            if not self.rotate_refresh_tokens:
                access = self._new_access_locked(record.installation_id, client_id)
                return TokenPair(access, refresh_token, self.access_token_ttl, record.installation_id)
            record.status = "used"
            return self._issue_locked(record.installation_id, client_id)

    def issue_tokens(self, installation_id: str, client_id: str | None = None) -> TokenPair:
        """Issue a token pair directly (seeding a tenant without running the flow)."""
        with self._lock:
            return self._issue_locked(installation_id, client_id or self.client_id)

    def _new_access_locked(self, installation_id: str, client_id: str) -> str:
        access = "Atza|" + secrets.token_urlsafe(48)
        self._access[access] = IssuedAccessToken(installation_id, client_id, self.clock() + self.access_token_ttl)
        return access

    def _issue_locked(self, installation_id: str, client_id: str) -> TokenPair:
        access = self._new_access_locked(installation_id, client_id)
        refresh = "Atzr|" + secrets.token_urlsafe(48)
        self._refresh[refresh] = _Refresh(installation_id, client_id)
        return TokenPair(access, refresh, self.access_token_ttl, installation_id)

    # --- resource server -----------------------------------------------------------------------
    def check_access_token(self, token: str) -> tuple[IssuedAccessToken | None, str]:
        """``(record, "")`` for a usable token, else ``(record or None, error code)``."""
        with self._lock:
            record = self._access.get(token)
            if record is None:
                return None, "INVALID_ACCESS_TOKEN"
            if record.revoked:
                return record, "REVOKED_ACCESS_TOKEN"
            if record.expires_at <= self.clock():
                return record, "EXPIRED_ACCESS_TOKEN"
            return record, ""

    # --- administration ------------------------------------------------------------------------
    def issued_access_tokens(self) -> dict[str, IssuedAccessToken]:
        with self._lock:
            return dict(self._access)

    def revoke_refresh_tokens(self, installation_id: str) -> int:
        with self._lock:
            hits = [r for r in self._refresh.values() if r.installation_id == installation_id and r.status == "active"]
            for record in hits:
                record.status = "revoked"
            return len(hits)

    def revoke_access_tokens(self, installation_id: str) -> int:
        with self._lock:
            hits = [t for t, r in self._access.items() if r.installation_id == installation_id and not r.revoked]
            for token in hits:
                old = self._access[token]
                self._access[token] = IssuedAccessToken(
                    old.installation_id, old.client_id, old.expires_at, revoked=True
                )
            return len(hits)
