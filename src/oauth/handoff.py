"""Settings hands off to the partner's app: a verified Settings request becomes a redirect to
`PartnerAppUrl` carrying a short-lived signed session token for that installation.

The token is a JWT (HS256) signed with a secret the stack generates in Secrets Manager (never a
parameter); the partner's app reads the same secret and verifies it (src/clients/session_token.py):

    iss  the integration's public origin     aud  PartnerAppUrl's origin
    sub  the installation ID                 iat, exp  exp - iat = SESSION_SECONDS (5 minutes)
    jti  random, 128 bits: the app accepts each jti once (single use)
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from shared.errors import ConfigurationError

SESSION_SECONDS = 300
MIN_SECRET_CHARACTERS = 32


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class SigningSecret:
    """The signing secret from Secrets Manager, cached for a few minutes (a rotation is picked up)."""

    def __init__(
        self, client: Any, secret_arn: str, *, ttl_seconds: int = 300, clock: Callable[[], float] = time.time
    ) -> None:
        self._client, self._arn, self._ttl, self._clock = client, secret_arn, ttl_seconds, clock
        self._cached: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            if self._cached and self._cached[1] > self._clock():
                return self._cached[0]
            value = str(self._client.get_secret_value(SecretId=self._arn).get("SecretString") or "")
            if len(value) < MIN_SECRET_CHARACTERS:
                raise ConfigurationError(
                    f"SESSION_SIGNING_SECRET_ARN: the secret must hold at least {MIN_SECRET_CHARACTERS} characters"
                )
            self._cached = (value, self._clock() + self._ttl)
            return value


def session_token(secret: str, *, issuer: str, app_url: str, installation_id: str, now: int) -> str:
    import jwt

    claims = {
        "iss": issuer,
        "aud": origin_of(app_url),
        "sub": installation_id,
        "iat": now,
        "exp": now + SESSION_SECONDS,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def handoff_url(app_url: str, token: str) -> str:
    separator = "&" if urlsplit(app_url).query else "?"
    return f"{app_url}{separator}session={token}"
