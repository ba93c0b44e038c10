"""Verifying the session token Settings hands to the partner's app (PartnerAppUrl?session=...).

Copy this into your app; it needs pyjwt. Read the signing secret from the stack's
SessionSigningSecretArn output (Secrets Manager, your app's role needs GetSecretValue on it).

    claims = verify_session(request.args["session"], secret, app_origin="https://app.example",
                            issuer="https://<the integration's origin>", seen=jti_store)
    installation_id = claims["sub"]

`seen` is your record of used token IDs: `seen.add(jti)` must return False when the jti was there
already (e.g. a DynamoDB conditional put, a Redis SET NX); keep each jti for 10 minutes.
"""

from __future__ import annotations

from typing import Any, Protocol

import jwt

MAX_LIFETIME_SECONDS = 300
LEEWAY_SECONDS = 30


class SeenTokens(Protocol):
    def add(self, jti: str) -> bool:
        """Record `jti`; False when it was recorded already."""
        ...


class SessionTokenError(ValueError):
    """The session token is not valid: show the merchant a page to open the app again from Buy with Prime."""


def verify_session(token: str, secret: str, *, app_origin: str, issuer: str, seen: SeenTokens) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],  # never "none", never what the token says
            audience=app_origin,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "sub", "iat", "exp", "jti"]},
        )
    except jwt.PyJWTError as error:
        raise SessionTokenError(f"session token refused: {type(error).__name__}") from None
    if int(claims["exp"]) - int(claims["iat"]) > MAX_LIFETIME_SECONDS:
        raise SessionTokenError("session token refused: lives longer than 5 minutes")
    if not seen.add(str(claims["jti"])):
        raise SessionTokenError("session token refused: already used")
    return claims
