"""Verification tokens and time (issue 8, item 7): a maximum age by `iat`, a future `iat` counted
as now, tokens without `exp`/`iat` counted (or refused where configured), and an uninstall that is
replay-safe whatever the claims: single-use, and never removing an installation stored after it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from oauth import routes
from oauth.http import HttpRequest
from oauth.verification import RequestVerifier, VerificationError
from sandbox.signing import VerificationSigner as Signer
from shared.store.installations import InstallationStore, UninstallOutcome
from shared.store.keys import UNINSTALL_TOKEN_PREFIX
from tests.app_driver import API_ORIGIN, AppDriver
from tests.conftest import TABLE_NAME

INSTALLATION = "amzn1.bwp.installation.times"
URL = f"{API_ORIGIN}/settings"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


def _verify(signer: Signer, verifier: RequestVerifier, **claims: Any) -> Any:
    signed = signer.sign_url(URL, INSTALLATION, **claims)
    query = signed.split("?", 1)[1]
    event = {
        "rawPath": "/settings",
        "rawQueryString": query,
        "headers": {},
        "requestContext": {"http": {"method": "GET"}, "domainName": API_ORIGIN.removeprefix("https://")},
    }
    return verifier.verify(HttpRequest.from_event(event), API_ORIGIN)


@pytest.mark.parametrize(
    "age,max_age,accepted",
    [(200, 300, True), (359, 300, True), (400, 300, False), (86_400, 0, True)],  # leeway 60 s; 0 = no limit
)
def test_a_token_older_than_the_maximum_age_is_refused(signer: Signer, age: int, max_age: int, accepted: bool) -> None:
    verifier = RequestVerifier(signer.public_key_pem, max_age_seconds=max_age)
    claims = {"extra_claims": {"iat": int(time.time()) - age}, "expires_in": None}
    if accepted:
        assert _verify(signer, verifier, **claims).installation_id == INSTALLATION
    else:
        with pytest.raises(VerificationError) as refused:
            _verify(signer, verifier, **claims)
        assert refused.value.reason == "token_too_old"


def test_an_iat_in_the_future_counts_as_now(signer: Signer) -> None:
    verifier = RequestVerifier(signer.public_key_pem)
    before = int(time.time())
    verified = _verify(signer, verifier, extra_claims={"iat": before + 3600, "exp": before + 7200})
    assert before <= verified.issued_at <= int(time.time())
    assert verified.expires_at == before + 7200 and not verified.without_times


@pytest.mark.parametrize("omit", [("iat",), ("exp",), ("iat", "exp")])
def test_tokens_without_exp_or_iat_are_flagged_and_refused_only_when_required(
    signer: Signer, omit: tuple[str, ...]
) -> None:
    accepted = _verify(signer, RequestVerifier(signer.public_key_pem), omit_claims=omit)
    assert accepted.without_times
    with pytest.raises(VerificationError) as refused:
        _verify(signer, RequestVerifier(signer.public_key_pem, require_times=True), omit_claims=omit)
    assert refused.value.reason == "token_without_times"


@pytest.mark.parametrize("value", ["yesterday", True, None, 1e300, [1]])
def test_a_malformed_iat_is_an_invalid_token(signer: Signer, value: Any) -> None:
    with pytest.raises(VerificationError) as refused:
        _verify(signer, RequestVerifier(signer.public_key_pem), extra_claims={"iat": value})
    assert refused.value.reason == "invalid_token"


def test_the_route_counts_accepted_tokens_without_times(app: AppDriver, monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[str] = []
    monkeypatch.setattr(routes, "count", lambda name, value=1: counted.append(name))
    app.install(INSTALLATION)
    response = app.call("GET", app.signed_url("/settings", INSTALLATION, omit_claims=("iat",)))
    assert response.status == 200
    assert "VerificationTokenWithoutTimes" in counted


def test_required_times_refuse_with_403_and_no_side_effect(app: AppDriver) -> None:
    app.install(INSTALLATION)
    app.deps.settings = app.deps.settings.model_copy(update={"require_verification_token_times": True})
    app.deps.__dict__.pop("verifier", None)
    before = app.items()
    for path, method in (("/settings", "GET"), ("/uninstall", "POST")):
        response = app.call(method, app.signed_url(path, INSTALLATION, body=b"{}", omit_claims=("exp",)), body=b"{}")
        assert response.status == 403
        if method == "POST":  # Settings answers with a page, Uninstall with JSON
            assert response.json()["error"] == "token_without_times"
    assert app.items() == before


@pytest.mark.parametrize(
    "claims",
    [
        {"omit_claims": ("iat",)},  # no iat at all
        {"extra_claims": {"iat": "FUTURE"}},  # an iat inside the leeway, in the future
        {},  # an ordinary token, replayed within its lifetime
    ],
    ids=["no-iat", "future-iat", "plain"],
)
def test_a_replayed_uninstall_never_removes_the_re_installation(app: AppDriver, claims: dict[str, Any]) -> None:
    # given an installation uninstalled by a signed call
    app.install(INSTALLATION)
    if claims.get("extra_claims", {}).get("iat") == "FUTURE":
        claims = {"extra_claims": {"iat": int(time.time()) + 30}}
    body = b'{"reason":"merchant uninstalled"}'
    url = app.signed_url("/uninstall", INSTALLATION, body=body, **claims)
    assert app.call("POST", url, body=body).json() == {"status": "uninstalled"}
    # when the merchant re-installs right away (usually the same second) and the call is replayed
    app.install(INSTALLATION)
    replay = app.call("POST", url, body=body)
    # then the re-installation keeps its tokens
    assert replay.status == 200
    assert replay.json() == {"status": "newer_installation_kept"}
    item = app.installation_item(INSTALLATION)
    assert item is not None and item["status"]["S"] == "active" and "refresh_token" in item
    assert "Connected" in app.settings(INSTALLATION).body


def test_the_single_use_record_holds_a_digest_and_expires(app: AppDriver) -> None:
    app.install(INSTALLATION)
    body = b"{}"
    url = app.signed_url("/uninstall", INSTALLATION, body=body, expires_in=300)
    token = url.split("verification-token=", 1)[1]
    app.call("POST", url, body=body)
    [record] = [i for i in app.items() if i["pk"]["S"].startswith(UNINSTALL_TOKEN_PREFIX)]
    assert token not in str(record)
    ttl = int(record["expires_at"]["N"])
    assert 89 * 86_400 < ttl - time.time() < 91 * 86_400 + 300
    assert abs(int(record["first_seen_ms"]["N"]) - time.time() * 1000) < 60_000


def test_uninstall_is_ordered_to_the_millisecond(dynamodb: Any) -> None:
    """Store level: an installation stored after the cut-off survives even in the same second;
    an item from before `installed_at_ms` existed is compared by whole seconds, strictly."""
    from shared.models import TokenSet

    store = InstallationStore(dynamodb, TABLE_NAME)
    kept, removed = UninstallOutcome.NEWER_INSTALLATION_KEPT, UninstallOutcome.UNINSTALLED
    tokens = TokenSet.model_validate({"access_token": "a" * 20, "refresh_token": "r" * 20, "expires_in": 900})
    store.save_installation("same-second", tokens, 1_000.600)
    assert store.uninstall("same-second", requested_at_ms=1_000_500, now=1_001) is kept
    assert store.uninstall("same-second", requested_at_ms=1_000_700, now=1_001) is removed
    store.save_installation("old-format", tokens, 1_000)
    dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": "INSTALLATION#old-format"}, "sk": {"S": "INSTALLATION"}},
        UpdateExpression="REMOVE installed_at_ms",
    )
    assert store.uninstall("old-format", requested_at_ms=1_000_000, now=1_001) is kept
    assert store.uninstall("old-format", requested_at_ms=1_000_001, now=1_001) is removed
