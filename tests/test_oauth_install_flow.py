"""The app-install flow end to end (in-process handler, moto table, sandbox Buy with Prime)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from tests.app_driver import API_ORIGIN, AppDriver
from tests.conftest import CLIENT_ID

INSTALLATION = "amzn1.bwp.installation.one"


def test_launch_redirects_to_authorize_with_every_parameter_and_binds_the_browser(app: AppDriver) -> None:
    # given / when
    launched = app.launch()
    # then
    assert launched.response.status == 302
    location = urlsplit(launched.response.location)
    assert f"{location.scheme}://{location.netloc}{location.path}" == app.sandbox.authorize_url
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{API_ORIGIN}/install"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 22  # >= 128 bits of base64url
    cookie = launched.response.cookies[0]
    assert cookie.startswith("__Host-bwp-oauth=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    # the state is kept server-side, the verifier never leaves it
    state_items = [i for i in app.items() if i["pk"]["S"].startswith("OAUTH_STATE#")]
    assert [i["pk"]["S"] for i in state_items] == [f"OAUTH_STATE#{launched.state}"]
    assert state_items[0]["code_verifier"]["S"] not in launched.response.location


def test_two_launches_get_different_states_and_verifiers(app: AppDriver) -> None:
    first, second = app.launch(), app.launch()
    assert first.state != second.state
    assert first.code_challenge != second.code_challenge
    assert first.cookie != second.cookie


def test_install_exchanges_the_code_and_stores_tokens_without_showing_them(app: AppDriver) -> None:
    # given a launched flow approved on the consent page
    launched = app.launch()
    install_url = app.approve(launched, INSTALLATION)
    # when Buy with Prime redirects the browser to the Install URL
    response = app.call("GET", install_url, cookies=[launched.cookie])
    # then
    assert response.status == 200, response.body
    assert "App installed" in response.body
    item = app.installation_item(INSTALLATION)
    assert item is not None
    assert item["status"]["S"] == "active"
    assert item["access_token"]["S"].startswith("Atza|")
    assert item["refresh_token"]["S"].startswith("Atzr|")
    for secret in (item["access_token"]["S"], item["refresh_token"]["S"]):
        assert secret not in response.body
        assert all(secret not in value for value in response.headers.values())
    assert app.sandbox.calls["token:authorization_code"] == 1
    # the state is consumed and the browser cookie cleared
    assert not [i for i in app.items() if i["pk"]["S"].startswith("OAUTH_STATE#")]
    assert any(c.startswith("__Host-bwp-oauth=;") and "Max-Age=0" in c for c in response.cookies)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_install_through_the_lambda_entry_point(app: AppDriver) -> None:
    launched = app.launch()
    response = app.call("GET", app.approve(launched, INSTALLATION), cookies=[launched.cookie], via_lambda_handler=True)
    assert response.status == 200
    assert app.installation_item(INSTALLATION) is not None


def test_install_can_redirect_to_a_configured_page(app: AppDriver) -> None:
    app.deps.settings = app.deps.settings.model_copy(
        update={"post_install_redirect_url": "https://partner.example/welcome"}
    )
    response = app.install(INSTALLATION)
    assert response.status == 302
    assert response.location == "https://partner.example/welcome"
    assert app.installation_item(INSTALLATION) is not None


def test_settings_shows_the_installation_and_a_healthy_token(app: AppDriver) -> None:
    app.install(INSTALLATION)
    response = app.settings(INSTALLATION)
    assert response.status == 200
    assert INSTALLATION in response.body
    assert "Installed" in response.body
    assert "Connected" in response.body
    item = app.installation_item(INSTALLATION)
    assert item is not None
    assert item["access_token"]["S"] not in response.body


def test_settings_of_an_unknown_installation_is_404(app: AppDriver) -> None:
    response = app.settings("amzn1.bwp.installation.never")
    assert response.status == 404
    assert "has not installed" in response.body


def test_settings_shows_reauthorisation_when_the_refresh_token_is_revoked(app: AppDriver) -> None:
    # given an installation whose access token expired and whose refresh token Buy with Prime revoked
    app.install(INSTALLATION)
    app.dynamodb.update_item(
        TableName=app.table,
        Key={"pk": {"S": f"INSTALLATION#{INSTALLATION}"}, "sk": {"S": "INSTALLATION"}},
        UpdateExpression="SET access_token_expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    app.sandbox.revoke_refresh_tokens(INSTALLATION)
    # when
    response = app.settings(INSTALLATION)
    # then
    assert response.status == 200
    assert "Needs your permission again" in response.body
    assert "/launch" in response.body
    item = app.installation_item(INSTALLATION)
    assert item is not None and item["status"]["S"] == "needs_reauthorization"


def test_settings_shows_a_revoked_token_at_once_not_when_the_cache_expires(app: AppDriver) -> None:
    """Issue 8: the container caches a valid token; Buy with Prime revokes the installation's tokens.
    The next Settings view asks the API, refreshes once, and tells the truth."""
    app.install(INSTALLATION)
    assert "Connected" in app.settings(INSTALLATION).body  # now cached in this container
    app.sandbox.revoke_access_tokens(INSTALLATION)
    assert "Connected" in app.settings(INSTALLATION).body  # only the access token: replaced once
    assert app.sandbox.calls["token:refresh_token"] == 1
    app.sandbox.revoke_access_tokens(INSTALLATION)
    app.sandbox.revoke_refresh_tokens(INSTALLATION)
    response = app.settings(INSTALLATION)
    assert "Needs your permission again" in response.body and "/launch" in response.body
    item = app.installation_item(INSTALLATION)
    assert item is not None and item["status"]["S"] == "needs_reauthorization"


def test_uninstall_forgets_the_tokens_and_is_idempotent(app: AppDriver) -> None:
    app.install(INSTALLATION)
    first = app.uninstall(INSTALLATION)
    assert first.status == 200
    assert first.json() == {"status": "uninstalled"}
    item = app.installation_item(INSTALLATION)
    assert item is not None
    assert item["status"]["S"] == "uninstalled"
    assert "access_token" not in item and "refresh_token" not in item
    # the tombstone waits in the sweep index for its tenant's purge (TENANT_PURGE_DAYS later)
    assert "expires_at" not in item and item["sweep_shard"]["S"].startswith("UNINSTALLED#")
    second = app.uninstall(INSTALLATION)
    assert second.status == 200
    assert second.json() == {"status": "already_uninstalled"}
    never = app.uninstall("amzn1.bwp.installation.never")
    assert never.status == 200 and never.json() == {"status": "not_found"}


def test_uninstall_needs_no_live_token(app: AppDriver) -> None:
    app.install(INSTALLATION)
    app.sandbox.revoke_refresh_tokens(INSTALLATION)
    token_calls = app.sandbox.calls["token:refresh_token"]
    assert app.uninstall(INSTALLATION).status == 200
    assert app.sandbox.calls["token:refresh_token"] == token_calls


def test_uninstall_then_reinstall(app: AppDriver) -> None:
    app.install(INSTALLATION)
    app.uninstall(INSTALLATION)
    response = app.install(INSTALLATION)
    assert response.status == 200
    item = app.installation_item(INSTALLATION)
    assert item is not None
    assert item["status"]["S"] == "active"
    assert "uninstalled_at" not in item and "expires_at" not in item
    assert "Connected" in app.settings(INSTALLATION).body


def test_a_late_uninstall_never_touches_a_newer_reinstallation(app: AppDriver) -> None:
    # given an uninstall request issued two minutes ago (delivered late), inside the age limit
    app.install(INSTALLATION)
    late = app.signed_url("/uninstall", INSTALLATION, body=b"{}", extra_claims={"iat": int(time.time()) - 120})
    # when it arrives after the merchant re-installed
    response = app.call("POST", late, body=b"{}")
    # then the newer installation keeps its tokens
    assert response.status == 200
    assert response.json() == {"status": "newer_installation_kept"}
    item = app.installation_item(INSTALLATION)
    assert item is not None and item["status"]["S"] == "active" and "refresh_token" in item


def test_an_uninstall_older_than_the_age_limit_is_refused_without_a_write(app: AppDriver) -> None:
    app.install(INSTALLATION)
    before = app.items()
    stale = app.signed_url("/uninstall", INSTALLATION, body=b"{}", extra_claims={"iat": int(time.time()) - 3600})
    response = app.call("POST", stale, body=b"{}")
    assert response.status == 403
    assert response.json()["error"] == "token_too_old"
    assert app.items() == before


def test_health_answers_without_touching_aws_or_secrets(app: AppDriver) -> None:
    response = app.call("GET", f"{API_ORIGIN}/health")
    assert response.status == 200
    assert response.json() == {"status": "ok"}
    assert "settings" not in app.deps.__dict__  # no configuration, client or secret was loaded


def test_custom_domain_is_used_for_the_redirect_uri(app: AppDriver) -> None:
    app.deps.settings = app.deps.settings.model_copy(update={"public_base_url": "https://apps.partner.example"})
    app.origin = "https://apps.partner.example"
    app.sandbox.oauth.redirect_uri = "https://apps.partner.example/install"
    launched = app.launch()
    assert "redirect_uri=https%3A%2F%2Fapps.partner.example%2Finstall" in launched.response.location
    response = app.call("GET", app.approve(launched, INSTALLATION), cookies=[launched.cookie])
    assert response.status == 200, response.body
