"""Tenant isolation on the OAuth routes: a verification token reaches its own installation and
nothing else. Settings and Uninstall with B's token show or change only B; a token that names A
but was signed for another URL, body or host is refused without any effect."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.app_driver import API_ORIGIN, AppDriver

A = "amzn1.bwp.installation.tenant-a"
B = "amzn1.bwp.installation.tenant-b"
BODY = b'{"reason":"merchant uninstalled"}'


@pytest.fixture
def two_tenants(app: AppDriver) -> AppDriver:
    assert app.install(A).status == 200
    assert app.install(B).status == 200
    return app


def _item(app: AppDriver, installation_id: str) -> dict[str, Any]:
    item = app.installation_item(installation_id)
    assert item is not None
    return item


def test_settings_with_bs_token_shows_b_and_nothing_of_a(two_tenants: AppDriver) -> None:
    app = two_tenants
    a_item = _item(app, A)
    for own, other in ((B, A), (A, B)):
        response = app.settings(own)
        assert response.status == 200
        assert own in response.body and other not in response.body
    for value in (a_item["access_token"]["S"], a_item["refresh_token"]["S"]):
        assert value not in app.settings(B).body
    assert _item(app, A) == a_item  # reading B's page touched nothing of A


def test_a_refresh_for_b_on_settings_touches_only_b(two_tenants: AppDriver) -> None:
    app = two_tenants
    b_item = _item(app, B)
    app.dynamodb.update_item(
        TableName=app.table,
        Key={"pk": b_item["pk"], "sk": b_item["sk"]},
        UpdateExpression="SET access_token_expires_at = :p",
        ExpressionAttributeValues={":p": {"N": "1"}},
    )
    a_before = _item(app, A)
    assert app.settings(B).status == 200
    assert _item(app, B)["refresh_token"] != b_item["refresh_token"]  # B was refreshed...
    assert _item(app, A) == a_before  # ...and A left exactly as it was
    assert app.sandbox.calls["token:refresh_token"] == 1


def test_uninstall_with_bs_token_removes_only_bs_tokens(two_tenants: AppDriver) -> None:
    app = two_tenants
    a_before = _item(app, A)
    response = app.uninstall(B)
    assert response.status == 200 and response.json() == {"status": "uninstalled"}
    b_after = _item(app, B)
    assert b_after["status"]["S"] == "uninstalled" and "access_token" not in b_after and "refresh_token" not in b_after
    assert _item(app, A) == a_before
    assert "Connected" in app.settings(A).body


def test_query_parameters_never_choose_the_installation(two_tenants: AppDriver) -> None:
    """Only the signed claim names the installation: `installationId=A` in B's signed URL is noise."""
    app = two_tenants
    a_before = _item(app, A)
    settings = app.call("GET", app.signed_url("/settings", B, query=f"installationId={A}"))
    assert settings.status == 200 and B in settings.body and A not in settings.body
    url = app.signed_url("/uninstall", B, body=BODY, query=f"installationId={A}&installation_id={A}")
    assert app.call("POST", url, body=BODY).json() == {"status": "uninstalled"}
    assert _item(app, A) == a_before
    assert _item(app, B)["status"]["S"] == "uninstalled"


def _token(app: AppDriver, url: str, installation_id: str, body: bytes = b"") -> str:
    return app.sandbox.signer.sign(url, body, installation_id)


def _swap_installation(token: str, installation_id: str) -> str:
    import base64
    import json

    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "installationId": installation_id}).encode())
    return f"{header}.{forged.rstrip(b'=').decode()}.{signature}"


UNINSTALL = f"{API_ORIGIN}/uninstall"
REFUSED_TOKENS_NAMING_A: dict[str, Callable[[AppDriver], str]] = {
    "signed for another partner app's host": lambda app: _token(app, "https://other-app.example/uninstall", A, BODY),
    "signed for another route of this app": lambda app: _token(app, f"{API_ORIGIN}/settings", A),
    "signed for another body": lambda app: _token(app, UNINSTALL, A, b'{"reason":"other"}'),
    "signed with a query the request does not carry": lambda app: _token(app, f"{UNINSTALL}?x=1", A, BODY),
    "B's genuine token relabelled as A": lambda app: _swap_installation(_token(app, UNINSTALL, B, BODY), A),
    "signed long ago": lambda app: app.sandbox.signer.sign(UNINSTALL, BODY, A, now=time.time() - 3600),
}


@pytest.mark.parametrize("kind", sorted(REFUSED_TOKENS_NAMING_A))
def test_a_token_naming_a_that_was_not_signed_for_this_request_is_refused(two_tenants: AppDriver, kind: str) -> None:
    app = two_tenants
    token = REFUSED_TOKENS_NAMING_A[kind](app)
    before = app.items()
    for response in (
        app.call("POST", f"{UNINSTALL}?verification-token={token}", body=BODY),
        app.call("POST", UNINSTALL, body=BODY, headers={"verification-token": token}),
    ):
        assert response.status == 403, response.body
        assert A not in response.body
    assert app.items() == before


def test_an_unknown_installations_token_reveals_and_creates_nothing(two_tenants: AppDriver) -> None:
    app = two_tenants
    before = app.items()
    settings = app.settings("amzn1.bwp.installation.nobody")
    assert settings.status == 404 and A not in settings.body and B not in settings.body
    assert app.uninstall("amzn1.bwp.installation.nobody").json() == {"status": "not_found"}
    assert app.items() == before


def test_the_warm_token_cache_never_serves_one_installation_anothers_token(two_tenants: AppDriver) -> None:
    app = two_tenants
    assert app.settings(A).status == 200  # A's token is now cached in this "Lambda"
    assert app.deps.tokens.access_token(B) == _item(app, B)["access_token"]["S"]
    assert app.deps.tokens.access_token(A) == _item(app, A)["access_token"]["S"]
    assert app.sandbox.issued_access_tokens()[app.deps.tokens.access_token(B)].installation_id == B
