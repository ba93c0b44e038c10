"""Secrets in the logs when an operator deploys with LogLevel=DEBUG.

The template mirrors LogLevel into Lambda's ApplicationLogLevel (LoggingConfig, JSON format), so
Lambda sets AWS_LAMBDA_LOG_LEVEL=DEBUG, and Lambda's Python runtime then sets the ROOT logger to
that level (awslambdaric bootstrap `_setup_logging`: `logger.setLevel(log_level)`). Every library
logger then reaches CloudWatch, not only Powertools': botocore logs each request's parameters and
each response body at DEBUG, which for this app means the client secret (GetSecretValue) and the
tokens (DynamoDB reads and writes). The suite otherwise runs with the root logger at WARNING, so
the session-wide scan cannot see this; this test reproduces the runtime's logging set-up.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from shared.observability import logger as powertools_logger
from tests.app_driver import AppDriver
from tests.conftest import CLIENT_SECRET
from tests.events_driver import EventsDriver
from tests.security.log_scan import SecretRegistry

INSTALLATION = "amzn1.bwp.installation.debug-logs"
BP = "amzn1.bp.product.debug-logs"


@contextmanager
def lambda_runtime_logging(level: str) -> Iterator[io.StringIO]:
    """The root logger as Lambda's runtime leaves it for ApplicationLogLevel=`level`, writing to a
    buffer only (pytest's and the session scan's handlers are set aside: what this test finds is
    its subject, asserted here)."""
    root = logging.getLogger()
    saved_handlers, saved_level, saved_powertools = root.handlers[:], root.level, powertools_logger.log_level
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root.handlers = [handler]
    root.setLevel(level)
    powertools_logger.setLevel(level)
    try:
        yield buffer
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        powertools_logger.setLevel(saved_powertools)


def _expire(app: AppDriver) -> None:
    app.dynamodb.update_item(
        TableName=app.table,
        Key={"pk": {"S": f"INSTALLATION#{INSTALLATION}"}, "sk": {"S": "INSTALLATION"}},
        UpdateExpression="SET access_token_expires_at = :p",
        ExpressionAttributeValues={":p": {"N": "1"}},
    )


def test_at_debug_level_no_library_logs_a_secret(app: AppDriver, events: EventsDriver) -> None:
    secrets = SecretRegistry()
    secrets.add(CLIENT_SECRET, "client secret")
    with lambda_runtime_logging("DEBUG") as logs:
        logging.getLogger("any.library").debug("probe")
        assert app.install(INSTALLATION).status == 200
        _expire(app)
        assert app.call("GET", app.signed_url("/settings", INSTALLATION), via_lambda_handler=True).status == 200
        events.store.put_link(BP, INSTALLATION, "operator")
        assert events.handle(events.order_event(BP, "o-debug"))[0] == {"batchItemFailures": []}
        for item in app.items():
            for name in ("access_token", "refresh_token", "code_verifier"):
                if name in item:
                    secrets.add(item[name]["S"], name)
        for token in app.sandbox.issued_access_tokens():
            secrets.add(token, "access token")
        assert app.uninstall(INSTALLATION).status == 200
    text = logs.getvalue()
    assert "any.library DEBUG probe" in text  # the capture really sees every library's DEBUG records
    leaked = sorted({origin for _, origin, _ in secrets.find(text)})
    assert leaked == [], f"secrets in DEBUG logs: {leaked}"
