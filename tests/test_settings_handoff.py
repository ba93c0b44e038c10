"""Settings hands off to the partner's app (src/oauth/handoff.py) with a signed session token, and
the verification example partners copy (src/clients/session_token.py) accepts it once, for its
audience, for 5 minutes."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from clients.session_token import SessionTokenError, verify_session
from tests.app_driver import API_ORIGIN, AppDriver

INSTALLATION = "amzn1.bwp.installation.handoff"
APP_URL = "https://partner.example/merchant/settings?from=bwp"
APP_ORIGIN = "https://partner.example"


class Seen:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    def add(self, jti: str) -> bool:
        if jti in self.ids:
            return False
        self.ids.add(jti)
        return True


@pytest.fixture
def signing_secret(app: AppDriver) -> str:
    value = secrets.token_urlsafe(48)
    arn = boto3.client("secretsmanager").create_secret(Name="session-signing", SecretString=value)["ARN"]
    app.deps.settings = app.deps.settings.model_copy(
        update={"partner_app_url": APP_URL, "session_signing_secret_arn": arn}
    )
    return value


def handed_token(response: Any) -> str:
    assert response.status == 302, response.body
    location = response.location
    assert location.startswith(APP_URL + "&session=")
    return parse_qs(urlsplit(location).query)["session"][0]


def test_a_verified_settings_request_hands_off_a_token_the_app_accepts_once(
    app: AppDriver, signing_secret: str
) -> None:
    app.install(INSTALLATION)
    token = handed_token(app.settings(INSTALLATION))
    seen = Seen()
    claims = verify_session(token, signing_secret, app_origin=APP_ORIGIN, issuer=API_ORIGIN, seen=seen)
    assert claims["sub"] == INSTALLATION and claims["exp"] - claims["iat"] == 300
    with pytest.raises(SessionTokenError, match="already used"):
        verify_session(token, signing_secret, app_origin=APP_ORIGIN, issuer=API_ORIGIN, seen=seen)
    item = app.installation_item(INSTALLATION) or {}
    assert item["access_token"]["S"] not in token and item["refresh_token"]["S"] not in token


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"secret": "another-secret-of-sufficient-length-000000"}, "InvalidSignatureError"),
        ({"app_origin": "https://evil.example"}, "InvalidAudienceError"),
        ({"issuer": "https://someone-else.example"}, "InvalidIssuerError"),
    ],
)
def test_the_example_refuses_a_token_for_another_app_key_or_issuer(
    app: AppDriver, signing_secret: str, change: dict[str, str], reason: str
) -> None:
    app.install(INSTALLATION)
    token = handed_token(app.settings(INSTALLATION))
    arguments = {"secret": signing_secret, "app_origin": APP_ORIGIN, "issuer": API_ORIGIN, **change}
    with pytest.raises(SessionTokenError, match=reason):
        verify_session(
            token, arguments["secret"], app_origin=arguments["app_origin"], issuer=arguments["issuer"], seen=Seen()
        )


def test_an_expired_or_unsigned_token_is_refused(app: AppDriver, signing_secret: str) -> None:
    import jwt

    now = int(time.time())
    old = {"iss": API_ORIGIN, "aud": APP_ORIGIN, "sub": INSTALLATION, "iat": now - 400, "exp": now - 100, "jti": "x"}
    with pytest.raises(SessionTokenError, match="ExpiredSignatureError"):
        verify_session(
            jwt.encode(old, signing_secret, algorithm="HS256"),
            signing_secret,
            app_origin=APP_ORIGIN,
            issuer=API_ORIGIN,
            seen=Seen(),
        )
    unsigned = jwt.encode({**old, "exp": now + 100, "iat": now}, None, algorithm="none")
    with pytest.raises(SessionTokenError):
        verify_session(unsigned, signing_secret, app_origin=APP_ORIGIN, issuer=API_ORIGIN, seen=Seen())
    long_lived = {**old, "iat": now, "exp": now + 3600}
    with pytest.raises(SessionTokenError, match="longer than 5 minutes"):
        verify_session(
            jwt.encode(long_lived, signing_secret, algorithm="HS256"),
            signing_secret,
            app_origin=APP_ORIGIN,
            issuer=API_ORIGIN,
            seen=Seen(),
        )


def test_an_installation_needing_reauthorisation_gets_the_built_in_page_not_the_app(
    app: AppDriver, signing_secret: str
) -> None:
    app.install(INSTALLATION)
    app.dynamodb.update_item(
        TableName=app.table,
        Key={"pk": {"S": f"INSTALLATION#{INSTALLATION}"}, "sk": {"S": "INSTALLATION"}},
        UpdateExpression="SET access_token_expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    app.sandbox.revoke_refresh_tokens(INSTALLATION)
    response = app.settings(INSTALLATION)
    assert response.status == 200 and "Needs your permission again" in response.body


def test_an_unsigned_settings_request_is_refused_before_any_hand_off(app: AppDriver, signing_secret: str) -> None:
    response = app.call("GET", f"/settings?installationId={INSTALLATION}")
    assert response.status == 401 and "Location" not in response.headers
