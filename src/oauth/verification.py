"""Buy with Prime's `verification-token`: an ES256 JWT whose `requestHash` claim binds it to the
exact URL (and body) of the request that carries it.

requestHash = hex(SHA-256(URL + bodyHash)), where URL is scheme://host + raw path + raw query as
received, cut just before the `?` or `&` that precedes `verification-token=`, and bodyHash is
hex(SHA-256(raw body)) or "" when there is no body.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from oauth.http import HttpRequest
from shared.errors import ConfigurationError

TOKEN_PARAMETER = "verification-token"  # noqa: S105 - a parameter name
ALGORITHMS = ["ES256"]  # pinned: never "none", never HS*


class VerificationError(Exception):
    """The request is not a genuine Buy with Prime call; `reason` is a short fixed code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedRequest:
    installation_id: str
    issued_at: int | None  # `iat`, never later than the time of verification (a future `iat` counts as now)
    expires_at: int | None  # `exp`
    token_digest: str  # SHA-256 of the token: what a single-use check remembers, never the token
    without_times: bool  # `exp` or `iat` missing: counted, and refused where configured


def received_url(base_url: str, raw_path: str, raw_query: str) -> str:
    """The URL the hash covers: everything before the `verification-token` parameter."""
    url = base_url + raw_path
    marker = f"{TOKEN_PARAMETER}="
    if not raw_query or raw_query.startswith(marker):
        return url
    position = raw_query.find(f"&{marker}")
    return f"{url}?{raw_query if position == -1 else raw_query[:position]}"


def request_hash(url: str, body: bytes) -> str:
    body_hash = hashlib.sha256(body).hexdigest() if body else ""
    return hashlib.sha256((url + body_hash).encode("utf-8")).hexdigest()


def token_of(request: HttpRequest) -> str | None:
    """The query parameter first, failing that the header of the same name."""
    return request.query.get(TOKEN_PARAMETER) or request.headers.get(TOKEN_PARAMETER) or None


class RequestVerifier:
    """`max_age_seconds`: how old (by `iat`, plus the leeway) a token may be; 0 = no limit.
    `require_times`: refuse tokens without `exp` or `iat` (Buy with Prime does not document them)."""

    def __init__(
        self,
        public_key_pem: str,
        *,
        leeway_seconds: int = 60,
        max_age_seconds: int = 300,
        require_times: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            key = load_pem_public_key(public_key_pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise ConfigurationError("BWP_VERIFICATION_PUBLIC_KEY: not a valid public key in PEM form") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise ConfigurationError("BWP_VERIFICATION_PUBLIC_KEY: must be an EC P-256 public key")
        self._key = key
        self._leeway = leeway_seconds
        self._max_age = max_age_seconds
        self._require_times = require_times
        self._clock = clock

    def verify(self, request: HttpRequest, base_url: str) -> VerifiedRequest:
        token = _token(request)
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=ALGORITHMS,
                leeway=self._leeway,
                # `iat` is checked below: a future one counts as now rather than being refused
                options={"verify_aud": False, "verify_iss": False, "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise VerificationError("expired_token") from None
        except jwt.ImmatureSignatureError:
            raise VerificationError("token_not_yet_valid") from None
        except jwt.PyJWTError:
            raise VerificationError("invalid_token") from None
        installation_id = claims.get("installationId")
        expected_hash = claims.get("requestHash")
        if not isinstance(installation_id, str) or not installation_id.strip() or len(installation_id) > 256:
            raise VerificationError("invalid_token")
        if not isinstance(expected_hash, str):
            raise VerificationError("invalid_token")
        _check_hash(request, base_url, expected_hash)
        issued_at, expires_at = _time_claim(claims, "iat"), _time_claim(claims, "exp")
        without_times = issued_at is None or expires_at is None
        if without_times and self._require_times:
            raise VerificationError("token_without_times")
        now = int(self._clock())
        if issued_at is not None:
            issued_at = min(issued_at, now)
            if self._max_age and now - issued_at > self._max_age + self._leeway:
                raise VerificationError("token_too_old")
        return VerifiedRequest(
            installation_id=installation_id,
            issued_at=issued_at,
            expires_at=expires_at,
            token_digest=hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest(),
            without_times=without_times,
        )


def _token(request: HttpRequest) -> str:
    token = token_of(request)
    if not token:
        raise VerificationError("missing_token")
    if not token.isascii():  # a JWT is base64url and dots; a lone surrogate must not reach pyjwt
        raise VerificationError("invalid_token")
    if _parameters_after_the_token(request.raw_query):
        raise VerificationError("unsigned_parameters")  # outside the hash: never accepted
    return token


def _check_hash(request: HttpRequest, base_url: str, expected_hash: str) -> None:
    url = received_url(base_url, request.raw_path, request.raw_query)
    try:
        received_hash = request_hash(url, request.body)
    except UnicodeEncodeError:  # not a URL Buy with Prime signed (lone surrogates)
        raise VerificationError("request_hash_mismatch") from None
    if not hmac.compare_digest(received_hash, expected_hash.lower()):
        raise VerificationError("request_hash_mismatch")


def _parameters_after_the_token(raw_query: str) -> bool:
    """True when a query parameter follows `verification-token`: the hash covers only what comes
    before it (received_url), so anything after would be unsigned."""
    marker = f"{TOKEN_PARAMETER}="
    if raw_query.startswith(marker):
        start = 0
    elif (found := raw_query.find(f"&{marker}")) != -1:
        start = found + 1
    else:
        return False
    return "&" in raw_query[start:]


def _time_claim(claims: dict[str, object], name: str) -> int | None:
    """A NumericDate claim as whole seconds; absent -> None, malformed -> refused."""
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not abs(value) <= 1e11:  # NaN fails too
        raise VerificationError("invalid_token")
    return int(value)
