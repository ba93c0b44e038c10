"""Every refusal: the right status, a short non-leaking message, and no side effect at all."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox.signing import VerificationSigner, request_hash
from tests.app_driver import API_ORIGIN, AppDriver, Response

INSTALLATION = "amzn1.bwp.installation.one"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(url: str, body: bytes = b"") -> dict[str, object]:
    now = int(time.time())
    return {"installationId": INSTALLATION, "requestHash": request_hash(url, body), "iat": now, "exp": now + 300}


def _refused(app: AppDriver, response: Response, status: int, before: list[dict[str, object]]) -> None:
    assert response.status == status, response.body
    assert app.items() == before, "a refused request changed the table"
    assert len(response.body) < 2000
    assert "Traceback" not in response.body


@pytest.fixture
def installed(app: AppDriver) -> AppDriver:
    """An installed app: refusals must leave this installation exactly as it is."""
    assert app.install(INSTALLATION).status == 200
    return app


def _forged_tokens(app: AppDriver, url: str) -> dict[str, str]:
    claims = _claims(url)
    other_key = VerificationSigner()
    public_pem = app.sandbox.signer.public_key_pem.encode()
    return {
        "another key": other_key.sign(url, installation_id=INSTALLATION),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "HS256 with the public key as secret": _hs256(claims, public_pem),
        "tampered claims": _swap_payload(
            app.sandbox.signer.sign(url, installation_id=INSTALLATION),
            {**claims, "installationId": "amzn1.bwp.installation.other"},
        ),
        "garbage": "not-a-jwt",
        "ES384 (another curve)": _p384_token(claims),
    }


def _hs256(claims: dict[str, object], secret: bytes) -> str:
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64(claims)
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _swap_payload(token: str, claims: dict[str, object]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{_b64(claims)}.{signature}"


def _p384_token(claims: dict[str, object]) -> str:
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return jwt.encode(claims, pem, algorithm="ES384")


@pytest.mark.parametrize("path,method", [("/settings", "GET"), ("/uninstall", "POST"), ("/install", "GET")])
def test_forged_tokens_are_refused_with_403(installed: AppDriver, path: str, method: str) -> None:
    url = f"{API_ORIGIN}{path}" + ("?code=c&state=s" if path == "/install" else "")
    before = installed.items()
    for name, token in _forged_tokens(installed, url).items():
        separator = "&" if "?" in url else "?"
        response = installed.call(method, f"{url}{separator}verification-token={token}")
        _refused(installed, response, 403, before)
        assert "could not be verified" in response.body, name


@pytest.mark.parametrize("path,method", [("/settings", "GET"), ("/uninstall", "POST"), ("/install", "GET")])
def test_a_missing_token_is_refused_with_401(installed: AppDriver, path: str, method: str) -> None:
    before = installed.items()
    _refused(installed, installed.call(method, f"{API_ORIGIN}{path}"), 401, before)


def test_an_expired_token_is_refused(installed: AppDriver) -> None:
    before = installed.items()
    url = f"{API_ORIGIN}/uninstall"
    token = installed.sandbox.signer.sign(url, installation_id=INSTALLATION, expires_in=-120)
    response = installed.call("POST", f"{url}?verification-token={token}")
    _refused(installed, response, 403, before)
    assert response.json()["error"] == "expired_token"


def test_a_token_just_past_expiry_is_accepted_within_the_leeway(installed: AppDriver) -> None:
    url = f"{API_ORIGIN}/settings"
    token = installed.sandbox.signer.sign(url, installation_id=INSTALLATION, expires_in=-10)
    assert installed.call("GET", f"{url}?verification-token={token}").status == 200


def test_a_token_without_installation_id_is_refused(installed: AppDriver) -> None:
    before = installed.items()
    url = f"{API_ORIGIN}/uninstall"
    token = installed.sandbox.signer.sign(url, installation_id="", expires_in=300)
    _refused(installed, installed.call("POST", f"{url}?verification-token={token}"), 403, before)


def test_a_tampered_url_is_refused(installed: AppDriver) -> None:
    before = installed.items()
    signed = installed.signed_url("/settings", INSTALLATION, query="tab=general")
    response = installed.call("GET", signed.replace("tab=general", "tab=billing"))
    _refused(installed, response, 403, before)
    assert response.body.count("request_hash") == 0  # the page says "could not be verified", no internals


def test_a_tampered_body_is_refused(installed: AppDriver) -> None:
    before = installed.items()
    url = installed.signed_url("/uninstall", INSTALLATION, body=b'{"a":1}')
    response = installed.call("POST", url, body=b'{"a":2}')
    _refused(installed, response, 403, before)
    assert response.json()["error"] == "request_hash_mismatch"


def test_a_token_for_another_route_is_refused(installed: AppDriver) -> None:
    before = installed.items()
    settings_url = installed.signed_url("/settings", INSTALLATION)
    token = settings_url.split("verification-token=")[1]
    _refused(installed, installed.call("POST", f"{API_ORIGIN}/uninstall?verification-token={token}"), 403, before)


def test_a_replayed_state_exchanges_nothing_and_a_reload_shows_the_installation(app: AppDriver) -> None:
    """A reloaded install page (the merchant pressed F5) is the same signed URL with a spent state:
    no second code exchange, no write, and the page says what is installed."""
    launched = app.launch()
    install_url = app.approve(launched, INSTALLATION)
    assert app.call("GET", install_url, cookies=[launched.cookie]).status == 200
    before = app.items()
    calls = app.sandbox.calls["token:authorization_code"]
    replay = app.call("GET", install_url, cookies=[launched.cookie])
    assert replay.status == 200 and "App installed" in replay.body and INSTALLATION in replay.body
    assert app.items() == before
    assert app.sandbox.calls["token:authorization_code"] == calls


def test_a_replayed_state_of_an_installation_no_longer_active_is_refused(app: AppDriver) -> None:
    launched = app.launch()
    install_url = app.approve(launched, INSTALLATION)
    assert app.call("GET", install_url, cookies=[launched.cookie]).status == 200
    assert app.uninstall(INSTALLATION).status == 200
    before = app.items()
    replay = app.call("GET", install_url, cookies=[launched.cookie])
    _refused(app, replay, 400, before)
    assert "already used" in replay.body


def test_deny_on_the_consent_page_says_you_declined_and_offers_a_new_start(app: AppDriver) -> None:
    """Buy with Prime redirects with error=access_denied and no code (and possibly no verification
    token): a plain page, never "not verified", and nothing stored."""
    app.launch()
    before = app.items()
    for query in ("error=access_denied&state=s1", "error=access_denied&error_description=%3Cscript%3E&state=s1"):
        response = app.call("GET", f"/install?{query}")
        assert response.status == 200 and "You declined" in response.body and "Not verified" not in response.body
        assert "/launch" in response.body and "<script>" not in response.body
        assert app.items() == before
    other = app.call("GET", "/install?error=%3Cb%3Eweird%3C%2Fb%3E")
    assert other.status == 400 and "weird" not in other.body and "Start again" in other.body


def test_every_page_names_the_app_and_refuses_framing(app: AppDriver) -> None:
    app.deps.settings = app.deps.settings.model_copy(update={"app_name": "Acme Shipping"})
    pages = [app.install(INSTALLATION), app.settings(INSTALLATION), app.call("GET", "/install?error=access_denied")]
    pages.append(app.call("GET", "/settings"))  # refused: not signed
    for page in pages:
        assert "Acme Shipping" in page.body, page.body
        assert page.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_an_unknown_state_is_refused(app: AppDriver) -> None:
    launched = app.launch()
    before = app.items()
    url = app.signed_url("/install", INSTALLATION, query="code=abc&state=never-issued")
    _refused(app, app.call("GET", url, cookies=[launched.cookie]), 400, before)


def test_an_expired_state_is_refused(app: AppDriver) -> None:
    # moto never expires TTL items (nor does DynamoDB promptly): expiry is checked on read
    launched = app.launch()
    app.dynamodb.update_item(
        TableName=app.table,
        Key={"pk": {"S": f"OAUTH_STATE#{launched.state}"}, "sk": {"S": "OAUTH_STATE"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    before = app.items()
    response = app.call("GET", app.approve(launched, INSTALLATION), cookies=[launched.cookie])
    _refused(app, response, 400, before)
    assert "expired" in response.body


def test_a_state_from_another_browser_is_refused(app: AppDriver) -> None:
    mine, theirs = app.launch(), app.launch()
    before = app.items()
    response = app.call("GET", app.approve(mine, INSTALLATION), cookies=[theirs.cookie])
    _refused(app, response, 403, before)
    assert "another browser" in response.body


def test_a_missing_browser_cookie_is_refused(app: AppDriver) -> None:
    launched = app.launch()
    before = app.items()
    _refused(app, app.call("GET", app.approve(launched, INSTALLATION)), 403, before)


def test_a_missing_code_is_refused(app: AppDriver) -> None:
    launched = app.launch()
    before = app.items()
    url = app.signed_url("/install", INSTALLATION, query=f"state={launched.state}")
    _refused(app, app.call("GET", url, cookies=[launched.cookie]), 400, before)


def test_a_code_buy_with_prime_rejects_gives_a_start_again_page(app: AppDriver) -> None:
    launched = app.launch()
    url = app.signed_url("/install", INSTALLATION, query=f"code=forged-code&state={launched.state}")
    response = app.call("GET", url, cookies=[launched.cookie])
    assert response.status == 400
    assert 'href="/launch"' in response.body
    assert app.installation_item(INSTALLATION) is None


def test_the_token_endpoint_failing_gives_a_retry_page_and_a_retry_works(app: AppDriver) -> None:
    launched = app.launch()
    url = app.approve(launched, INSTALLATION)
    app.sandbox.fail_next("token", 503, times=10)
    response = app.call("GET", url, cookies=[launched.cookie])
    assert response.status == 502
    assert "try again" in response.body and 'href="/launch"' in response.body
    assert app.installation_item(INSTALLATION) is None
    app.sandbox.faults.clear()
    assert app.install(INSTALLATION).status == 200


@pytest.mark.parametrize(
    "method,path,status",
    [("POST", "/launch", 405), ("GET", "/uninstall", 405), ("DELETE", "/settings", 405), ("GET", "/admin", 404)],
)
def test_wrong_method_or_path(app: AppDriver, method: str, path: str, status: int) -> None:
    before = app.items()
    response = app.call(method, f"{API_ORIGIN}{path}")
    _refused(app, response, status, before)
    if status == 405:
        assert response.headers["Allow"] in {"GET", "POST"}


def test_a_body_that_is_not_base64_is_a_400(app: AppDriver) -> None:
    from devtools.apigw import http_event
    from oauth import handler

    event = http_event("POST", f"{API_ORIGIN}/uninstall", body=b"{}")
    event["isBase64Encoded"] = True
    event["body"] = "***not base64***"
    before = app.items()
    response = handler.handle(event, app.deps)
    assert response["statusCode"] == 400
    assert app.items() == before


@pytest.mark.parametrize(("method", "path"), [("GET", "/install"), ("GET", "/settings"), ("POST", "/uninstall")])
@pytest.mark.parametrize("where", ["query", "header"])
def test_a_lone_surrogate_in_the_verification_token_is_a_403_without_a_trace(
    installed: AppDriver, method: str, path: str, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = installed.items()
    token = "eyJhbGciOiJFUzI1NiJ9.\ud800.sig"
    if where == "query":
        response = installed.call(method, f"{path}?code=c&state=s&verification-token={token}")
    else:
        response = installed.call(method, f"{path}?code=c&state=s", headers={"verification-token": token})
    _refused(installed, response, 403, before)
    assert not [r for r in caplog.records if r.exc_info], "a stack trace was logged"


@pytest.mark.parametrize(("method", "path"), [("GET", "/settings"), ("POST", "/uninstall")])
def test_parameters_after_the_verification_token_are_refused(installed: AppDriver, method: str, path: str) -> None:
    """The request hash covers what comes before the token; a parameter after it is unsigned."""
    body = b'{"reason":"merchant uninstalled"}' if method == "POST" else b""
    signed = installed.signed_url(path, INSTALLATION, body=body)
    assert installed.call(method, signed, body=body).status == 200  # as signed: fine
    before = installed.items()
    response = installed.call(method, signed + "&installationId=amzn1.bwp.installation.other", body=body)
    _refused(installed, response, 403, before)
