"""Lambda entry point of the token broker (template.yaml: TokenBrokerFunction), behind a function
URL with AWS_IAM auth: only principals allowed `lambda:InvokeFunctionUrl` on it (the
TokenBrokerInvokePolicy, attached to the roles in TokenBrokerCallerRoles) get through, and AWS
tells the function who called (requestContext.authorizer.iam).

    POST /token    {"installationId": "..."}
                   -> {"installationId", "accessToken", "expiresAt"}
    POST /graphql  {"installationId": "...", "query": "...", "variables": {}}
                   -> {"data": ...}, or {"data": null, "errors": [...]} as Buy with Prime answered

Refusals: {"error": <code>, "message": ...} with 400, 404, 405, 409, 410, 502 or 503 (Retry-After).
One audit line per call: caller, installation, action, outcome; never a token.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from broker.dependencies import Dependencies
from broker.service import BrokerError, TokenBroker
from shared.budget import Deadline
from shared.observability import count_with_reason, logger, metrics
from shared.wiring import Container

MAX_BODY_BYTES = 65_536
BROKER_SECONDS_WITHOUT_CONTEXT = 25.0

_container = Container(Dependencies)


def dependencies() -> Dependencies:
    return _container.get()


def reset_dependencies(replacement: Dependencies | None = None) -> None:
    """For tests and the local stack: start from fresh collaborators (or given ones)."""
    _container.reset(replacement)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, dependencies(), context)


def handle(event: dict[str, Any], deps: Dependencies, context: Any = None) -> dict[str, Any]:
    caller = _caller(event)
    action = str(event.get("rawPath") or "/").strip("/")
    installation_id: str | None = None
    try:
        method = str(((event.get("requestContext") or {}).get("http") or {}).get("method") or "")
        if action not in ("token", "graphql"):
            raise BrokerError("not_found", 404, "use POST /token or POST /graphql")
        if method != "POST":
            raise BrokerError("method_not_allowed", 405, "use POST")
        body = _body(event)
        installation_id = _text(body, "installationId", 256)
        broker = TokenBroker(deps.tokens, deps.installations, deps.buy_with_prime)
        deadline = Deadline.from_context(context, deps.budget, fallback=BROKER_SECONDS_WITHOUT_CONTEXT)
        if action == "token":
            answer = broker.token(installation_id, deadline)
        else:
            variables = body.get("variables")
            if variables is not None and not isinstance(variables, dict):
                raise BrokerError("bad_request", 400, "variables must be an object")
            answer = broker.graphql(installation_id, _text(body, "query", 32_768), variables, deadline)
    except BrokerError as error:
        _audit(caller, action, installation_id, error.code)
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
        return _json(error.status, {"error": error.code, "message": error.message}, headers)
    except Exception as error:  # noqa: BLE001 - never a stack trace or a token in the answer
        logger.exception("token broker call failed")
        from shared.failures import report_failure

        report_failure(error)
        _audit(caller, action, installation_id, "internal")
        return _json(500, {"error": "internal", "message": "the broker failed; see its logs"})
    _audit(caller, action, installation_id, "ok" if "errors" not in answer else "graphql_errors")
    return _json(200, answer)


def _caller(event: dict[str, Any]) -> str:
    """Who signed the request, as AWS verified it (AWS_IAM auth); never taken from the body."""
    iam = ((event.get("requestContext") or {}).get("authorizer") or {}).get("iam") or {}
    return str(iam.get("userArn") or iam.get("callerId") or "unknown")


def _body(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("body") or ""
    try:
        data = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else str(raw).encode()
        if len(data) > MAX_BODY_BYTES:
            raise BrokerError("bad_request", 400, f"body over {MAX_BODY_BYTES} bytes")
        body = json.loads(data)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise BrokerError("bad_request", 400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BrokerError("bad_request", 400, "the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BrokerError("bad_request", 400, f"{name} must be a non-empty string of at most {limit} characters")
    return value


def _audit(caller: str, action: str, installation_id: str | None, outcome: str) -> None:
    count_with_reason("TokenBrokerCalls", outcome)
    log = logger.info if outcome in ("ok", "graphql_errors") else logger.warning
    log(
        "token broker call",
        extra={"caller": caller, "action": action, "installation_id": installation_id, "outcome": outcome},
    )


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})},
        "body": json.dumps(payload),
        "isBase64Encoded": False,
    }
