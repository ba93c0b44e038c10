"""The local Buy with Prime stand-in (sandbox/) behaves as the reference documents describe.

Each expectation is recomputed here independently (hashlib, base64, pyjwt) rather than through the
sandbox's own helpers, so a wrong helper cannot make its own test pass.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import jwt
import pytest
import requests

from sandbox import AuthorizeError, BuyWithPrimeSandbox, VerificationSigner, request_hash
from sandbox.signing import body_hash

CLIENT_ID = "amzn1.application-oa2-client.sandboxtest"
CLIENT_SECRET = "s3cr3t-" + "x" * 24
REDIRECT_URI = "https://app.example.com/install"
INSTALLATION = "8d2c1f9e-0a4b-4c5d-9e8f-0123456789ab"
TIMEOUT = 5


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def decode(token: str, public_key_pem: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, public_key_pem, algorithms=["ES256"])
    return claims


@pytest.fixture(scope="module")
def signer() -> VerificationSigner:
    return VerificationSigner()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(signer: VerificationSigner, clock: FakeClock) -> Iterator[BuyWithPrimeSandbox]:
    with BuyWithPrimeSandbox(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, signer=signer, clock=clock) as box:
        yield box


def authorize_params(challenge: str, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "state": "st-" + secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def code_from(location: str) -> str:
    return parse_qs(urlsplit(location).query)["code"][0]


def new_code(box: BuyWithPrimeSandbox, installation: str = INSTALLATION) -> tuple[str, str]:
    verifier, challenge = make_pkce()
    location = box.authorize(installation, challenge, REDIRECT_URI, "state-1")
    return code_from(location), verifier


def post_token(box: BuyWithPrimeSandbox, **fields: str) -> requests.Response:
    body = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **fields}
    return requests.post(box.token_url, data=body, timeout=TIMEOUT)


def exchange(box: BuyWithPrimeSandbox, code: str, verifier: str, **extra: str) -> requests.Response:
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        **extra,
    }
    return post_token(box, **fields)


def refresh(box: BuyWithPrimeSandbox, refresh_token: str) -> requests.Response:
    return post_token(box, grant_type="refresh_token", refresh_token=refresh_token)


def graphql(
    box: BuyWithPrimeSandbox,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None,
    installation: str | None = INSTALLATION,
    api_version: str | None = "2024-11-01",
) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if installation is not None:
        headers["X-Omni-InstallationId"] = installation
    if api_version is not None:
        headers["x-api-version"] = api_version
    body = json.dumps({"query": query, "variables": variables or {}})
    return requests.post(box.graphql_url, data=body, headers=headers, timeout=TIMEOUT)


def classification(response: requests.Response) -> dict[str, Any]:
    errors = response.json()["errors"]
    assert len(errors) == 1
    result: dict[str, Any] = errors[0]["extensions"]["classification"]
    return result


STORE_QUERY = "query BuyWithPrimeStore { buyWithPrimeStore { siteId widgetId } }"


# --- signing ------------------------------------------------------------------------------------
def test_request_hash_without_body_is_sha256_of_the_url_alone() -> None:
    # given a URL and no body
    url = "https://app.example.com/settings?lang=en"
    # when / then: bodyHash is the empty string
    assert request_hash(url, b"") == sha256_hex(url.encode())
    assert body_hash(b"") == ""


def test_request_hash_with_body_appends_the_hex_body_hash() -> None:
    # given an uninstall-style JSON body
    url = "https://app.example.com/uninstall"
    body = b'{"installationId": "abc", "reason": "merchant"}'
    # when
    value = request_hash(url, body)
    # then: sha256(url + hex(sha256(body)))
    assert value == sha256_hex((url + sha256_hex(body)).encode())
    assert value == value.lower() and len(value) == 64


@pytest.mark.parametrize(
    ("url", "separator"),
    [("https://app.example.com/install?code=abc&state=xyz", "&"), ("https://app.example.com/settings", "?")],
)
def test_sign_url_appends_the_token_last_and_signs_the_url_before_it(
    signer: VerificationSigner, url: str, separator: str
) -> None:
    # when
    signed = signer.sign_url(url, INSTALLATION)
    # then: the token is the last parameter, not percent-encoded, signed over the URL before it
    prefix = url + separator + "verification-token="
    assert signed.startswith(prefix)
    token = signed[len(prefix) :]
    assert "%" not in token and "&" not in token
    claims = decode(token, signer.public_key_pem)
    assert claims["installationId"] == INSTALLATION
    assert claims["requestHash"] == sha256_hex(url.encode())


def test_sign_url_with_a_body_includes_the_body_hash(signer: VerificationSigner) -> None:
    # given an uninstall POST with the token in the query
    url = "https://app.example.com/uninstall"
    body = b'{"event":"uninstall"}'
    # when
    signed = signer.sign_url(url, INSTALLATION, body=body)
    # then
    token = parse_qs(urlsplit(signed).query)["verification-token"][0]
    assert decode(token, signer.public_key_pem)["requestHash"] == sha256_hex((url + sha256_hex(body)).encode())


def test_token_for_the_header_is_signed_over_the_full_url(signer: VerificationSigner) -> None:
    # given a settings URL with its own query, the token travelling in the HTTP header
    url = "https://app.example.com/settings?tab=general&x=1"
    # when
    token = signer.sign(url, b"", INSTALLATION)
    # then: nothing is cut from the URL
    claims = decode(token, signer.public_key_pem)
    assert claims["requestHash"] == sha256_hex(url.encode())
    assert jwt.get_unverified_header(token)["alg"] == "ES256"


def test_claims_carry_iat_and_exp_and_exp_can_be_omitted(signer: VerificationSigner) -> None:
    # when
    before = int(time.time())
    with_exp = decode(signer.sign("https://a.example/x", b"", INSTALLATION, expires_in=60), signer.public_key_pem)
    without_exp = jwt.decode(
        signer.sign("https://a.example/x", b"", INSTALLATION, expires_in=None),
        signer.public_key_pem,
        algorithms=["ES256"],
        options={"require": []},
    )
    # then
    assert before <= with_exp["iat"] <= int(time.time())
    assert with_exp["exp"] == with_exp["iat"] + 60
    assert "exp" not in without_exp and "iat" in without_exp


def test_extra_and_omitted_claims(signer: VerificationSigner) -> None:
    # when
    token = signer.sign(
        "https://a.example/x",
        b"",
        INSTALLATION,
        extra_claims={"installationId": "other", "nbf": 1},
        omit_claims=("requestHash",),
    )
    # then
    claims = decode(token, signer.public_key_pem)
    assert claims["installationId"] == "other" and claims["nbf"] == 1
    assert "requestHash" not in claims


def test_an_expired_token_is_refused_by_a_standard_verifier(signer: VerificationSigner) -> None:
    # given a token that expired ten minutes ago
    token = signer.sign("https://a.example/x", b"", INSTALLATION, now=time.time() - 900, expires_in=300)
    # then
    with pytest.raises(jwt.ExpiredSignatureError):
        decode(token, signer.public_key_pem)


@pytest.mark.parametrize("algorithm", ["none", "HS256"])
def test_forged_algorithms_do_not_verify_as_es256(signer: VerificationSigner, algorithm: str) -> None:
    # given a token forged with alg none / HS256 keyed by the public key
    token = signer.sign("https://a.example/x", b"", INSTALLATION, algorithm=algorithm)
    # then: its header says so, and an ES256-pinned verifier refuses it
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    with pytest.raises(jwt.InvalidTokenError):
        decode(token, signer.public_key_pem)


def test_unknown_algorithm_and_missing_installation_are_refused(signer: VerificationSigner) -> None:
    with pytest.raises(ValueError, match="unsupported algorithm"):
        signer.sign("https://a.example/x", b"", INSTALLATION, algorithm="RS256")
    with pytest.raises(TypeError):
        signer.sign("https://a.example/x")


def test_signer_built_from_a_pem_signs_with_that_key(signer: VerificationSigner) -> None:
    # given a second signer holding the first one's private key
    twin = VerificationSigner(signer.private_key_pem)
    # then: same public key, and its tokens verify against the first one's key
    assert twin.public_key_pem == signer.public_key_pem
    assert decode(twin.sign("https://a.example/x", b"", INSTALLATION), signer.public_key_pem)
    assert VerificationSigner().public_key_pem != signer.public_key_pem


def test_signer_refuses_a_key_that_is_not_p256() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP384R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(ValueError, match="P-256"):
        VerificationSigner(pem)


# --- authorize ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"response_type": "token"}, "response_type"),
        ({"client_id": None}, "client_id"),
        ({"client_id": "someone-else"}, "client_id"),
        ({"redirect_uri": "https://app.example.com/INSTALL"}, "redirect_uri"),
        ({"redirect_uri": None}, "redirect_uri"),
        ({"state": None}, "state"),
        ({"state": ""}, "state"),
        ({"code_challenge": "short"}, "code_challenge"),
        ({"code_challenge": "a" * 42 + "="}, "code_challenge"),
        ({"code_challenge": None}, "code_challenge"),
        ({"code_challenge_method": "plain"}, "code_challenge_method"),
        ({"code_challenge_method": None}, "code_challenge_method"),
    ],
)
def test_authorize_refuses_invalid_requests(
    sandbox: BuyWithPrimeSandbox, override: dict[str, str | None], message: str
) -> None:
    # given an otherwise valid authorize request with one parameter broken
    params = authorize_params(make_pkce()[1], **override)
    # when
    response = requests.get(sandbox.authorize_url, params=params, timeout=TIMEOUT)
    # then: a plain 400 that names the parameter
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert message in response.text


def test_authorize_refuses_a_repeated_parameter(sandbox: BuyWithPrimeSandbox) -> None:
    query = urlencode(authorize_params(make_pkce()[1])) + "&state=again"
    response = requests.get(sandbox.authorize_url + "?" + query, timeout=TIMEOUT)
    assert response.status_code == 400
    assert "state" in response.text


def test_authorize_accepts_any_install_url_when_none_is_registered(signer: VerificationSigner) -> None:
    with BuyWithPrimeSandbox(CLIENT_ID, CLIENT_SECRET, None, signer=signer) as box:
        params = authorize_params(make_pkce()[1], redirect_uri="http://localhost:9999/cb")
        assert requests.get(box.authorize_url, params=params, timeout=TIMEOUT).status_code == 200
        bad = authorize_params(make_pkce()[1], redirect_uri="not-a-url")
        assert requests.get(box.authorize_url, params=bad, timeout=TIMEOUT).status_code == 400


def test_consent_page_carries_the_parameters_and_an_approve_button(sandbox: BuyWithPrimeSandbox) -> None:
    # given a valid request whose state needs HTML escaping
    params = authorize_params(make_pkce()[1], state='a"b<c>&d')
    # when
    response = requests.get(sandbox.authorize_url, params=params, timeout=TIMEOUT)
    # then
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.text
    assert 'id="approve"' in page
    assert '<form method="post" action="/marketplace/authorize"' in page
    assert 'value="a&quot;b&lt;c&gt;&amp;d"' in page
    assert 'a"b<c>' not in page
    assert f'value="{sandbox.default_installation_id}"' in page
    assert f'value="{params["code_challenge"]}"' in page


def test_approve_redirects_to_the_install_url_with_a_signed_token(sandbox: BuyWithPrimeSandbox) -> None:
    # given the form the consent page posts, state with characters that need encoding
    verifier, challenge = make_pkce()
    form = {
        **authorize_params(challenge, state="s/1 +=&?"),
        "installation_id": "inst-browser",
        "store_name": "My Store",
        "action": "approve",
    }
    # when
    response = requests.post(sandbox.authorize_url, data=form, allow_redirects=False, timeout=TIMEOUT)
    # then: 302 to redirect_uri?code=..&state=..&verification-token=..
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?code=")
    signed_part, _, token = location.partition("&verification-token=")
    query = parse_qs(urlsplit(signed_part).query)
    assert query["state"] == ["s/1 +=&?"]
    claims = decode(token, sandbox.public_key_pem)
    assert claims["installationId"] == "inst-browser"
    assert claims["requestHash"] == sha256_hex(signed_part.encode())
    assert sandbox.installations["inst-browser"] == "My Store"
    # and the code in it can be exchanged
    assert exchange(sandbox, query["code"][0], verifier).status_code == 200
    assert sandbox.calls["authorize:approve"] == 1


class FormReader(HTMLParser):
    """What a browser submits when the #approve button is clicked."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.method = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.action, self.method = attributes["action"], attributes["method"]
        elif tag == "input" and "name" in attributes:
            self.fields[attributes["name"]] = attributes.get("value", "")
        elif tag == "button" and attributes.get("id") == "approve":
            self.fields[attributes["name"]] = attributes["value"]


def test_submitting_the_consent_form_as_a_browser_would(sandbox: BuyWithPrimeSandbox) -> None:
    # given the consent page for a state that needs escaping
    verifier, challenge = make_pkce()
    params = authorize_params(challenge, state='q"<&>')
    page = requests.get(sandbox.authorize_url, params=params, timeout=TIMEOUT)
    reader = FormReader()
    reader.feed(page.text)
    # when the form is submitted with its own fields and the approve button
    response = requests.post(
        urljoin(page.url, reader.action), data=reader.fields, allow_redirects=False, timeout=TIMEOUT
    )
    # then
    assert reader.method == "post"
    assert response.status_code == 302
    location = response.headers["Location"]
    signed_part, _, token = location.partition("&verification-token=")
    assert parse_qs(urlsplit(signed_part).query)["state"] == ['q"<&>']
    assert decode(token, sandbox.public_key_pem)["installationId"] == sandbox.default_installation_id
    assert exchange(sandbox, code_from(location), verifier).status_code == 200


def test_deny_redirects_with_access_denied(sandbox: BuyWithPrimeSandbox) -> None:
    form = {**authorize_params(make_pkce()[1], state="st"), "installation_id": "i", "action": "deny"}
    response = requests.post(sandbox.authorize_url, data=form, allow_redirects=False, timeout=TIMEOUT)
    assert response.status_code == 302
    assert response.headers["Location"] == REDIRECT_URI + "?error=access_denied&state=st"


def test_approve_revalidates_and_requires_an_installation(sandbox: BuyWithPrimeSandbox) -> None:
    challenge = make_pkce()[1]
    no_installation = {**authorize_params(challenge), "installation_id": " ", "action": "approve"}
    tampered = {**authorize_params(challenge, redirect_uri="https://evil.example/x"), "installation_id": "i"}
    for form in (no_installation, tampered):
        response = requests.post(sandbox.authorize_url, data=form, allow_redirects=False, timeout=TIMEOUT)
        assert response.status_code == 400


def test_programmatic_authorize_matches_the_browser_flow(sandbox: BuyWithPrimeSandbox) -> None:
    # when
    location = sandbox.authorize(INSTALLATION, make_pkce()[1], REDIRECT_URI, "xyz")
    # then
    signed_part, _, token = location.partition("&verification-token=")
    assert parse_qs(urlsplit(signed_part).query)["state"] == ["xyz"]
    claims = decode(token, sandbox.public_key_pem)
    assert claims == {**claims, "installationId": INSTALLATION, "requestHash": sha256_hex(signed_part.encode())}
    # and invalid requests raise instead of redirecting
    with pytest.raises(AuthorizeError):
        sandbox.authorize(INSTALLATION, make_pkce()[1], "https://elsewhere.example/install", "xyz")
    with pytest.raises(AuthorizeError):
        sandbox.authorize(INSTALLATION, make_pkce()[1], REDIRECT_URI, "xyz", client_id="nope")


# --- token: authorization_code ------------------------------------------------------------------
def test_code_exchange_with_pkce_issues_amazon_style_tokens(sandbox: BuyWithPrimeSandbox, clock: FakeClock) -> None:
    # given
    code, verifier = new_code(sandbox)
    # when
    response = exchange(sandbox, code, verifier)
    # then
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["access_token"].startswith("Atza|") and body["refresh_token"].startswith("Atzr|")
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    record = sandbox.issued_access_tokens()[body["access_token"]]
    assert record.installation_id == INSTALLATION and record.expires_at == clock.now + 900
    assert sandbox.calls["token:authorization_code"] == 1


def test_wrong_verifier_is_invalid_grant_and_burns_the_code(sandbox: BuyWithPrimeSandbox) -> None:
    # given
    code, verifier = new_code(sandbox)
    # when
    wrong = exchange(sandbox, code, make_pkce()[0])
    # then
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert exchange(sandbox, code, verifier).json()["error"] == "invalid_grant"


@pytest.mark.parametrize("verifier", ["", "short", "x" * 129, "has space" + "x" * 40])
def test_malformed_verifier_is_invalid_grant(sandbox: BuyWithPrimeSandbox, verifier: str) -> None:
    code, _ = new_code(sandbox)
    response = exchange(sandbox, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_a_code_is_single_use(sandbox: BuyWithPrimeSandbox) -> None:
    code, verifier = new_code(sandbox)
    assert exchange(sandbox, code, verifier).status_code == 200
    second = exchange(sandbox, code, verifier)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"


def test_code_exchange_needs_the_same_redirect_uri(sandbox: BuyWithPrimeSandbox) -> None:
    code, verifier = new_code(sandbox)
    response = exchange(sandbox, code, verifier, redirect_uri=REDIRECT_URI + "/")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_a_code_expires_after_code_ttl(sandbox: BuyWithPrimeSandbox, clock: FakeClock) -> None:
    code, verifier = new_code(sandbox)
    clock.now += 301
    response = exchange(sandbox, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_unknown_code_is_invalid_grant(sandbox: BuyWithPrimeSandbox) -> None:
    response = exchange(sandbox, "ANcodeNOPE", make_pkce()[0])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "credentials",
    [
        {"client_id": CLIENT_ID, "client_secret": "wrong"},
        {"client_id": "other", "client_secret": CLIENT_SECRET},
        {"client_id": CLIENT_ID},
        {},
    ],
)
def test_bad_client_credentials_are_401_invalid_client(
    sandbox: BuyWithPrimeSandbox, credentials: dict[str, str]
) -> None:
    code, verifier = new_code(sandbox)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    response = requests.post(sandbox.token_url, data={**form, **credentials}, timeout=TIMEOUT)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_basic_auth_instead_of_body_credentials_is_refused(sandbox: BuyWithPrimeSandbox) -> None:
    code, verifier = new_code(sandbox)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    response = requests.post(sandbox.token_url, data=form, auth=(CLIENT_ID, CLIENT_SECRET), timeout=TIMEOUT)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_grant_type_errors(sandbox: BuyWithPrimeSandbox) -> None:
    unsupported = post_token(sandbox, grant_type="client_credentials")
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"
    missing = post_token(sandbox)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    no_code = post_token(sandbox, grant_type="authorization_code")
    assert no_code.status_code == 400 and no_code.json()["error"] == "invalid_request"
    as_json = requests.post(
        sandbox.token_url,
        json={"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        timeout=TIMEOUT,
    )
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"


def test_expires_in_can_be_omitted(signer: VerificationSigner) -> None:
    # given a sandbox configured like a token endpoint that sends no expires_in
    with BuyWithPrimeSandbox(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, signer=signer, include_expires_in=False) as box:
        code, verifier = new_code(box)
        # when
        first = exchange(box, code, verifier).json()
        second = refresh(box, first["refresh_token"]).json()
        # then
        assert "expires_in" not in first and "expires_in" not in second
        assert {"access_token", "refresh_token", "token_type"} <= set(first)
        assert box.issue_tokens("x").keys() == {"access_token", "refresh_token", "token_type"}


# --- token: refresh_token -----------------------------------------------------------------------
def test_refresh_rotates_the_refresh_token(sandbox: BuyWithPrimeSandbox) -> None:
    # given an installed tenant
    code, verifier = new_code(sandbox)
    first = exchange(sandbox, code, verifier).json()
    # when
    response = refresh(sandbox, first["refresh_token"])
    # then: a new pair, for the same installation
    assert response.status_code == 200
    second = response.json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert sandbox.issued_access_tokens()[second["access_token"]].installation_id == INSTALLATION
    # and the old refresh token is dead, the new one alive
    old = refresh(sandbox, first["refresh_token"])
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"
    assert refresh(sandbox, second["refresh_token"]).status_code == 200
    assert sandbox.calls["token:refresh_token"] == 3


def test_without_rotation_the_refresh_token_stays_valid(signer: VerificationSigner) -> None:
    with BuyWithPrimeSandbox(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, signer=signer, rotate_refresh_tokens=False) as box:
        tokens = box.issue_tokens(INSTALLATION)
        again = refresh(box, tokens["refresh_token"]).json()
        assert again["refresh_token"] == tokens["refresh_token"]
        assert refresh(box, tokens["refresh_token"]).status_code == 200


def test_unknown_refresh_token_is_invalid_grant(sandbox: BuyWithPrimeSandbox) -> None:
    response = refresh(sandbox, "Atzr|nope")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_revoked_refresh_tokens_are_invalid_grant(sandbox: BuyWithPrimeSandbox) -> None:
    # given two tenants
    mine = sandbox.issue_tokens(INSTALLATION)
    theirs = sandbox.issue_tokens("other-installation")
    # when
    assert sandbox.revoke_refresh_tokens(INSTALLATION) == 1
    # then only this tenant's refresh is refused
    assert refresh(sandbox, mine["refresh_token"]).json()["error"] == "invalid_grant"
    assert refresh(sandbox, theirs["refresh_token"]).status_code == 200


def test_concurrent_refreshes_with_one_token_let_exactly_one_through(sandbox: BuyWithPrimeSandbox) -> None:
    # given one refresh token and eight threads released together against a slow endpoint
    tokens = sandbox.issue_tokens(INSTALLATION)
    sandbox.latency("token", 0.2)
    barrier = threading.Barrier(8)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        response = refresh(sandbox, tokens["refresh_token"])
        with lock:
            results.append(response)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    # then
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [400] * 7
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code == 400)
    assert sandbox.calls["token:refresh_token"] == 8


# --- graphql ------------------------------------------------------------------------------------
def test_store_query_answers_stable_ids_per_installation(sandbox: BuyWithPrimeSandbox) -> None:
    # given two installed tenants
    mine = sandbox.issue_tokens(INSTALLATION)["access_token"]
    theirs = sandbox.issue_tokens("other-installation")["access_token"]
    # when
    first = graphql(sandbox, STORE_QUERY, token=mine)
    again = graphql(sandbox, STORE_QUERY, token=mine)
    other = graphql(sandbox, STORE_QUERY, token=theirs, installation="other-installation")
    # then
    assert first.status_code == 200 and "errors" not in first.json()
    store = first.json()["data"]["buyWithPrimeStore"]
    assert set(store) == {"siteId", "widgetId"} and all(store.values())
    assert again.json() == first.json()
    assert other.json()["data"]["buyWithPrimeStore"] != store
    assert sandbox.api_versions == ["2024-11-01"] * 3
    assert sandbox.calls["graphql"] == 3 and sandbox.calls["graphql:buyWithPrimeStore"] == 3


def test_order_query_by_literal_id_projects_the_selection(sandbox: BuyWithPrimeSandbox) -> None:
    token = sandbox.issue_tokens(INSTALLATION)["access_token"]
    query = 'query { order(orderIdentifier: {orderId: "322-ABC1-AAAAAA"}) { id lineItems { id quantity { amount } } } }'
    response = graphql(sandbox, query, token=token)
    order = response.json()["data"]["order"]
    assert order["id"] == "322-ABC1-AAAAAA"
    assert set(order) == {"id", "lineItems"}
    assert order["lineItems"] and all(set(item) == {"id", "quantity"} for item in order["lineItems"])
    assert all(set(item["quantity"]) == {"amount"} for item in order["lineItems"])


def test_order_query_by_variables_alias_and_field_alias(sandbox: BuyWithPrimeSandbox) -> None:
    token = sandbox.issue_tokens(INSTALLATION)["access_token"]
    by_var = graphql(
        sandbox,
        "query Q($id: String!) { o: order(orderIdentifier: {orderId: $id}) { id __typename } }",
        {"id": "322-VAR0-AAAAAA"},
        token=token,
    )
    assert by_var.json()["data"] == {"o": {"id": "322-VAR0-AAAAAA", "__typename": "Order"}}
    by_alias = graphql(
        sandbox,
        "query Q($ident: OrderIdentifierInput!) { order(orderIdentifier: $ident) { id aliases { aliasId } } }",
        {"ident": {"alias": {"aliasType": "EXTERNAL_ID", "aliasId": "shop-1001"}}},
        token=token,
    )
    order = by_alias.json()["data"]["order"]
    assert order["id"].startswith("322-") and {"aliasId": "shop-1001"} in order["aliases"]


def test_order_shape_follows_the_api_version(sandbox: BuyWithPrimeSandbox) -> None:
    token = sandbox.issue_tokens(INSTALLATION)["access_token"]
    query = (
        'query { order(orderIdentifier: {orderId: "322-X"}) { packageInformation { id } deliveryInformation { id } } }'
    )
    new = graphql(sandbox, query, token=token).json()["data"]["order"]
    old = graphql(sandbox, query, token=token, api_version="2024-01-01").json()["data"]["order"]
    assert new["packageInformation"] and new["deliveryInformation"] is None
    assert old["deliveryInformation"] and old["packageInformation"] is None


def test_put_order_overrides_and_none_is_not_found(sandbox: BuyWithPrimeSandbox) -> None:
    token = sandbox.issue_tokens(INSTALLATION)["access_token"]
    sandbox.put_order(INSTALLATION, "322-CUST-OM0000", {"id": "322-CUST-OM0000", "lineItems": [], "note": "mine"})
    sandbox.put_order(INSTALLATION, "322-GONE-000000", None)
    custom = graphql(sandbox, 'query { order(orderIdentifier: {orderId: "322-CUST-OM0000"}) { note } }', token=token)
    assert custom.json()["data"]["order"] == {"note": "mine"}
    gone = graphql(sandbox, 'query { order(orderIdentifier: {orderId: "322-GONE-000000"}) { id } }', token=token)
    assert gone.status_code == 200 and gone.json()["data"] == {"order": None}
    assert classification(gone)["type"] == "ResourceNotFoundError"
    assert gone.json()["errors"][0]["path"] == ["order"]


@pytest.mark.parametrize(
    "query",
    [
        "query { inventoryItem(id: 1) { id } }",
        "mutation { deleteEverything }",
        "query { order(orderIdentifier: {orderId: 1) { id } }",
        "query { ...F } fragment F on Query { buyWithPrimeStore { siteId } }",
        'query { order(foo: "bar") { id } }',
    ],
)
def test_unknown_or_unreadable_queries_are_validation_errors(sandbox: BuyWithPrimeSandbox, query: str) -> None:
    token = sandbox.issue_tokens(INSTALLATION)["access_token"]
    response = graphql(sandbox, query, token=token)
    assert response.status_code == 200
    assert classification(response)["type"] == "ValidationError"


def test_graphql_without_authorization_is_401(sandbox: BuyWithPrimeSandbox) -> None:
    response = graphql(sandbox, STORE_QUERY, token=None)
    assert response.status_code == 401
    assert classification(response) == {
        "type": "AccessDeniedError",
        "errorType": "AccessDeniedError",
        "errorCode": "MISSING_AUTHORIZATION",
    }


def test_graphql_access_denied_cases(sandbox: BuyWithPrimeSandbox, clock: FakeClock) -> None:
    mine = sandbox.issue_tokens(INSTALLATION)["access_token"]
    theirs = sandbox.issue_tokens("other-installation")["access_token"]
    cases = {
        "INVALID_ACCESS_TOKEN": graphql(sandbox, STORE_QUERY, token="Atza|forged"),
        "MISSING_INSTALLATION_ID": graphql(sandbox, STORE_QUERY, token=mine, installation=None),
        "INSTALLATION_ID_MISMATCH": graphql(sandbox, STORE_QUERY, token=theirs),
    }
    for code, response in cases.items():
        assert response.status_code == 200, code
        assert response.json()["data"] is None
        assert classification(response) == {**classification(response), "type": "AccessDeniedError", "errorCode": code}
    basic = requests.post(
        sandbox.graphql_url, json={"query": STORE_QUERY}, headers={"Authorization": "Basic eDp5"}, timeout=TIMEOUT
    )
    assert classification(basic)["errorCode"] == "INVALID_ACCESS_TOKEN"
    # an access token stops working when it expires (900 s) or is revoked
    clock.now += 901
    assert classification(graphql(sandbox, STORE_QUERY, token=mine))["errorCode"] == "EXPIRED_ACCESS_TOKEN"
    clock.now -= 901
    assert sandbox.revoke_access_tokens(INSTALLATION) == 1
    assert classification(graphql(sandbox, STORE_QUERY, token=mine))["errorCode"] == "REVOKED_ACCESS_TOKEN"


def test_graphql_body_errors(sandbox: BuyWithPrimeSandbox) -> None:
    headers = {"Authorization": "Bearer " + sandbox.issue_tokens(INSTALLATION)["access_token"]}
    headers["X-Omni-InstallationId"] = INSTALLATION
    form = requests.post(sandbox.graphql_url, data={"query": STORE_QUERY}, headers=headers, timeout=TIMEOUT)
    assert form.status_code == 415
    headers["Content-Type"] = "application/json"
    broken = requests.post(sandbox.graphql_url, data=b"{not json", headers=headers, timeout=TIMEOUT)
    assert broken.status_code == 400 and classification(broken)["type"] == "ValidationError"


def test_a_refreshed_access_token_works_for_graphql(sandbox: BuyWithPrimeSandbox) -> None:
    code, verifier = new_code(sandbox)
    tokens = exchange(sandbox, code, verifier).json()
    fresh = refresh(sandbox, tokens["refresh_token"]).json()
    response = graphql(sandbox, STORE_QUERY, token=fresh["access_token"])
    assert response.json()["data"]["buyWithPrimeStore"]["siteId"]


# --- fault injection ----------------------------------------------------------------------------
def test_fail_next_token_serves_the_fault_then_recovers(sandbox: BuyWithPrimeSandbox) -> None:
    # given
    tokens = sandbox.issue_tokens(INSTALLATION)
    sandbox.fail_next("token", 503, times=2)
    # when
    first, second, third = (refresh(sandbox, tokens["refresh_token"]) for _ in range(3))
    # then: the faults do not consume the refresh token
    assert [first.status_code, second.status_code] == [503, 503]
    assert first.json()["error"] == "temporarily_unavailable"
    assert third.status_code == 200
    assert sandbox.calls["token:refresh_token"] == 3


def test_fail_next_graphql_with_custom_body_and_headers(sandbox: BuyWithPrimeSandbox) -> None:
    token = sandbox.issue_tokens(INSTALLATION)["access_token"]
    sandbox.fail_next("graphql", 429, body="slow down", headers={"Retry-After": "0"})
    sandbox.fail_next("graphql", 500)
    throttled = graphql(sandbox, STORE_QUERY, token=token)
    assert throttled.status_code == 429 and throttled.text == "slow down"
    assert throttled.headers["Retry-After"] == "0"
    failed = graphql(sandbox, STORE_QUERY, token=token)
    assert failed.status_code == 500 and classification(failed)["type"] == "InternalServerError"
    assert graphql(sandbox, STORE_QUERY, token=token).status_code == 200


def test_default_429_bodies(sandbox: BuyWithPrimeSandbox) -> None:
    token = sandbox.issue_tokens(INSTALLATION)["access_token"]
    sandbox.fail_next("graphql", 429)
    sandbox.fail_next("token", 429)
    assert classification(graphql(sandbox, STORE_QUERY, token=token))["type"] == "ThrottlingError"
    assert refresh(sandbox, "Atzr|x").json()["error"] == "slow_down"


def test_throttle_next_answers_200_with_a_throttling_error(sandbox: BuyWithPrimeSandbox) -> None:
    token = sandbox.issue_tokens(INSTALLATION)["access_token"]
    sandbox.throttle_next(times=2)
    responses = [graphql(sandbox, STORE_QUERY, token=token) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [classification(r)["type"] for r in responses[:2]] == ["ThrottlingError"] * 2
    assert responses[0].json()["data"] is None
    assert "errors" not in responses[2].json()


def test_latency_delays_the_endpoint(sandbox: BuyWithPrimeSandbox) -> None:
    token = sandbox.issue_tokens(INSTALLATION)["access_token"]
    sandbox.latency("graphql", 0.3)
    started = time.monotonic()
    assert graphql(sandbox, STORE_QUERY, token=token).status_code == 200
    assert time.monotonic() - started >= 0.3
    sandbox.latency("graphql", 0)
    started = time.monotonic()
    graphql(sandbox, STORE_QUERY, token=token)
    assert time.monotonic() - started < 0.3


def test_fault_injection_refuses_bad_arguments(sandbox: BuyWithPrimeSandbox) -> None:
    with pytest.raises(ValueError):
        sandbox.fail_next("authorize", 503)
    with pytest.raises(ValueError):
        sandbox.fail_next("token", 42)
    with pytest.raises(ValueError):
        sandbox.latency("nowhere", 1)


# --- observability and plumbing -----------------------------------------------------------------
def test_request_log_holds_field_names_but_no_secrets(sandbox: BuyWithPrimeSandbox) -> None:
    # given a full install and one API call
    code, verifier = new_code(sandbox)
    tokens = exchange(sandbox, code, verifier).json()
    graphql(sandbox, STORE_QUERY, token=tokens["access_token"])
    # when
    logged = json.dumps(sandbox.requests)
    # then
    for secret in (CLIENT_SECRET, verifier, code, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in logged
    token_entry, graphql_entry = sandbox.requests
    assert token_entry["path"] == "/token" and token_entry["status"] == 200
    assert token_entry["fields"] == sorted(
        ["client_id", "client_secret", "code", "code_verifier", "grant_type", "redirect_uri"]
    )
    assert graphql_entry["headers"]["Authorization"] == "<redacted>"
    assert graphql_entry["headers"]["X-Omni-InstallationId"] == INSTALLATION
    assert graphql_entry["fields"] == ["query", "variables"]
    sandbox.reset_observations()
    assert not sandbox.requests and not sandbox.calls and not sandbox.api_versions


def test_unknown_paths_and_methods(sandbox: BuyWithPrimeSandbox) -> None:
    assert requests.get(sandbox.base_url + "/nope", timeout=TIMEOUT).status_code == 404
    wrong = requests.get(sandbox.token_url, timeout=TIMEOUT)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    assert requests.get(sandbox.base_url + "/", timeout=TIMEOUT).json()["status"] == "ok"


def test_keep_alive_connections_serve_several_requests(sandbox: BuyWithPrimeSandbox) -> None:
    token = sandbox.issue_tokens(INSTALLATION)["access_token"]
    with requests.Session() as session:
        headers = {"Authorization": f"Bearer {token}", "X-Omni-InstallationId": INSTALLATION}
        for _ in range(3):
            response = session.post(sandbox.graphql_url, json={"query": STORE_QUERY}, headers=headers, timeout=TIMEOUT)
            assert response.status_code == 200
        assert session.get(sandbox.base_url + "/missing", timeout=TIMEOUT).status_code == 404
        assert session.get(sandbox.base_url + "/", timeout=TIMEOUT).status_code == 200


def test_lifecycle_urls_and_restart() -> None:
    box = BuyWithPrimeSandbox(CLIENT_ID, CLIENT_SECRET)
    with pytest.raises(RuntimeError):
        _ = box.base_url
    with box:
        assert box.base_url.startswith("http://127.0.0.1:")
        assert box.authorize_url == box.base_url + "/marketplace/authorize"
        assert box.token_url == box.base_url + "/token"
        assert box.graphql_url == box.base_url + "/graphql"
        url = box.base_url
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/", timeout=TIMEOUT)
