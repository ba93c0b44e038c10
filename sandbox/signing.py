"""Buy with Prime ``verification-token`` signing, as documented.

Buy with Prime calls the app's Install, Settings and Uninstall URLs with a JWT named
``verification-token`` (query parameter, or failing that an HTTP header).  It is signed with an
EC P-256 key (ES256) and carries ``installationId`` and ``requestHash``:

    requestHash = hex(sha256(URL + bodyHash))
    bodyHash    = hex(sha256(body)), or "" when there is no body

where URL is the request URL (scheme://host + path + query) cut just before the ``?`` or ``&`` that
precedes ``verification-token=``.

This module is a stand-in signer with its own key; it is independent of ``src/``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["VerificationSigner", "body_hash", "request_hash", "token_param_separator"]

TOKEN_PARAM = "verification-token"


def body_hash(body: bytes) -> str:
    """Lowercase hex SHA-256 of ``body``, or ``""`` for an empty body."""
    return hashlib.sha256(body).hexdigest() if body else ""


def request_hash(url: str, body: bytes = b"") -> str:
    """``requestHash`` claim value: hex SHA-256 of ``url + body_hash(body)``.

    ``url`` is exactly the URL before ``verification-token`` is appended (or the full URL when the
    token travels in a header).
    """
    return hashlib.sha256((url + body_hash(body)).encode("utf-8")).hexdigest()


def token_param_separator(url: str) -> str:
    """The character that joins a query parameter onto ``url``."""
    return "&" if "?" in url else "?"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class VerificationSigner:
    """Signs ``verification-token`` JWTs with an EC P-256 key.

    A fresh key is generated unless ``private_key_pem`` is given.  ``public_key_pem`` is what an
    app under test must be configured with.
    """

    def __init__(self, private_key_pem: str | bytes | None = None) -> None:
        if private_key_pem is None:
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
            loaded = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey) or not isinstance(loaded.curve, ec.SECP256R1):
                raise ValueError("private_key_pem must be an EC P-256 private key")
            key = loaded
        self._key = key
        self.public_key_pem: str = (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )

    @property
    def private_key_pem(self) -> str:
        """PKCS#8 PEM of the signing key (for handing the same key to another process)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    def claims(
        self,
        url: str,
        body: bytes = b"",
        installation_id: str | None = None,
        *,
        expires_in: int | None = 300,
        extra_claims: dict[str, Any] | None = None,
        omit_claims: tuple[str, ...] = (),
        now: float | None = None,
    ) -> dict[str, Any]:
        """The claim set :meth:`sign` would sign."""
        if installation_id is None:
            raise TypeError("installation_id is required")
        issued_at = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "installationId": installation_id,
            "requestHash": request_hash(url, body),
            "iat": issued_at,
        }
        if expires_in is not None:
            claims["exp"] = issued_at + expires_in
        claims.update(extra_claims or {})
        for name in omit_claims:
            claims.pop(name, None)
        return claims

    def sign(
        self,
        url: str,
        body: bytes = b"",
        installation_id: str | None = None,
        *,
        expires_in: int | None = 300,
        extra_claims: dict[str, Any] | None = None,
        omit_claims: tuple[str, ...] = (),
        algorithm: str = "ES256",
        now: float | None = None,
    ) -> str:
        """A ``verification-token`` for a request to ``url`` carrying ``body``.

        ``installation_id`` is required (it is positional third to match ``(url, body, id)``).
        ``expires_in=None`` omits ``exp``; ``extra_claims`` overrides or adds claims (after the
        standard ones); ``omit_claims`` drops claims, for negative tests.

        ``algorithm``: ``"ES256"`` (what Buy with Prime uses) or, for negative tests only,
        ``"none"`` (unsigned) and ``"HS256"`` (HMAC keyed with ``public_key_pem``: the classic
        algorithm-confusion forgery a verifier must refuse).
        """
        claims = self.claims(
            url,
            body,
            installation_id,
            expires_in=expires_in,
            extra_claims=extra_claims,
            omit_claims=omit_claims,
            now=now,
        )
        if algorithm == "ES256":
            return jwt.encode(claims, self._key, algorithm="ES256", headers={"typ": "JWT"})
        if algorithm in ("none", "HS256"):
            return self._forge(claims, algorithm)
        raise ValueError(f"unsupported algorithm {algorithm!r}: use ES256, none or HS256")

    def _forge(self, claims: dict[str, Any], algorithm: str) -> str:
        header = {"alg": algorithm, "typ": "JWT"}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        if algorithm == "none":
            return signing_input + "."
        mac = hmac.new(self.public_key_pem.encode(), signing_input.encode(), hashlib.sha256)
        return signing_input + "." + _b64url(mac.digest())

    def sign_url(self, url: str, installation_id: str, body: bytes = b"", **kw: Any) -> str:
        """``url`` with ``verification-token=<token>`` appended as the last query parameter.

        The token is signed over ``url`` exactly as given (before the parameter is appended).
        JWTs are URL-safe, so the token is not percent-encoded.
        """
        token = self.sign(url, body, installation_id, **kw)
        return url + token_param_separator(url) + TOKEN_PARAM + "=" + token
