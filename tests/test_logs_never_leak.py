"""Drive every route, success and failure, and search everything written for secrets."""

from __future__ import annotations

import io
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from oauth import handler
from shared.observability import logger
from tests.app_driver import API_ORIGIN, AppDriver
from tests.conftest import CLIENT_SECRET

INSTALLATION = "amzn1.bwp.installation.logs"


def test_no_token_verifier_code_or_client_secret_is_ever_logged(
    app: AppDriver, capfd: pytest.CaptureFixture[str]
) -> None:
    # Powertools' handler holds the stream it saw at import: point it at a buffer for this test
    log_stream = io.StringIO()
    original_stream = logger.registered_handler.setStream(log_stream)  # type: ignore[attr-defined]
    logger.setLevel("DEBUG")
    secrets: set[str] = {CLIENT_SECRET}
    try:
        # install, through the real Lambda entry point (Powertools decorators included)
        launched = app.launch()
        state_item = next(i for i in app.items() if i["pk"]["S"].startswith("OAUTH_STATE#"))
        secrets.add(state_item["code_verifier"]["S"])
        secrets.add(launched.cookie.split("=", 1)[1])
        install_url = app.approve(launched, INSTALLATION)
        query = parse_qs(urlsplit(install_url).query)
        secrets.update({query["code"][0], query["verification-token"][0]})
        assert app.call("GET", install_url, cookies=[launched.cookie], via_lambda_handler=True).status == 200
        # a replay, a forged token, a refresh (expired token) and a rejected refresh
        app.call("GET", install_url, cookies=[launched.cookie], via_lambda_handler=True)
        app.call("GET", f"{API_ORIGIN}/settings?verification-token=eyJhbGciOiJub25lIn0.e30.", via_lambda_handler=True)
        item = app.installation_item(INSTALLATION)
        assert item is not None
        secrets.update({item["access_token"]["S"], item["refresh_token"]["S"]})
        app.dynamodb.update_item(
            TableName=app.table,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET access_token_expires_at = :p",
            ExpressionAttributeValues={":p": {"N": "1"}},
        )
        settings_url = app.signed_url("/settings", INSTALLATION)
        secrets.add(settings_url.split("verification-token=")[1])
        assert app.call("GET", settings_url, via_lambda_handler=True).status == 200
        item = app.installation_item(INSTALLATION)
        assert item is not None
        secrets.update({item["access_token"]["S"], item["refresh_token"]["S"]})
        app.sandbox.revoke_refresh_tokens(INSTALLATION)
        app.dynamodb.update_item(
            TableName=app.table,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET access_token_expires_at = :p",
            ExpressionAttributeValues={":p": {"N": "1"}},
        )
        app.call("GET", app.signed_url("/settings", INSTALLATION), via_lambda_handler=True)
        app.sandbox.fail_next("token", 503, times=10)
        relaunched = app.launch()
        app.call("GET", app.approve(relaunched, INSTALLATION), cookies=[relaunched.cookie], via_lambda_handler=True)
        app.sandbox.faults.clear()
        assert (
            app.call(
                "POST", app.signed_url("/uninstall", INSTALLATION, body=b"{}"), body=b"{}", via_lambda_handler=True
            ).status
            == 200
        )
        secrets.update(str(token) for token in app.sandbox.issued_access_tokens())
    finally:
        logger.setLevel("INFO")
        logger.registered_handler.setStream(original_stream)  # type: ignore[attr-defined]
        handler.reset_dependencies()
    captured = capfd.readouterr()
    logs = log_stream.getvalue()
    output = logs + captured.out + captured.err
    # the capture really holds the structured logs, correlated by installation, and the metrics
    records = [json.loads(line) for line in logs.splitlines()]
    assert any(r.get("installation_id") == INSTALLATION for r in records)
    assert any(r.get("message") == "request refused" for r in records)
    assert '"CloudWatchMetrics"' in captured.out + captured.err  # EMF metrics were written too
    leaked = sorted(s[:12] + "..." for s in secrets if s and s in output)
    assert leaked == [], f"secrets found in logs: {leaked}"
