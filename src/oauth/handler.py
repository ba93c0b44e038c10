"""Lambda entry point of the OAuth function: routes API Gateway HTTP API (payload 2.0) events.

Kept light on purpose (a merchant waits on the OAuth redirect): each route imports what it needs
on first use, and `/health` touches neither AWS nor Buy with Prime.
"""

from __future__ import annotations

from typing import Any

from oauth.dependencies import Dependencies
from oauth.http import BadRequestError, HttpRequest, json_response
from oauth.refusal import Refusal
from shared.errors import ConfigurationError
from shared.observability import count_with_reason, logger, metrics
from shared.wiring import Container

# path -> (method, name of the function in oauth.routes); imported on first use (cold start).
ROUTES: dict[str, tuple[str, str]] = {
    "/launch": ("GET", "launch"),
    "/install": ("GET", "install"),
    "/settings": ("GET", "settings"),
    "/uninstall": ("POST", "uninstall"),
    "/health": ("GET", "health"),
}
BROWSER_ROUTES = {"/launch", "/install", "/settings"}
# The template's OAuthFunction Timeout: what a call without a Lambda context may spend.
OAUTH_SECONDS_WITHOUT_CONTEXT = 29.0


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
    """Answer one request; every wait and retry ends by the invocation's remaining time."""
    path = str(event.get("rawPath") or "/")
    logger.append_keys(route=path)
    method, route = ROUTES.get(path, ("", ""))
    try:
        request = HttpRequest.from_event(event)
        if not route:
            raise Refusal(404, "unknown_route", "Not found.")
        if request.method != method:
            raise Refusal(405, "method_not_allowed", f"Use {method} for this URL.")
        if route == "health":  # answered here: no configuration, AWS client or secret involved
            return json_response(200, {"status": "ok"})
        from oauth import routes
        from shared.budget import Deadline

        deadline = Deadline.from_context(context, deps.budget, fallback=OAUTH_SECONDS_WITHOUT_CONTEXT)
        answer: dict[str, Any] = getattr(routes, route)(request, deps, deadline)
        return answer
    except Refusal as refusal:
        return _refused(path, refusal, deps, allow=method)
    except BadRequestError as error:
        return _refused(path, Refusal(400, "bad_request", str(error)), deps)
    except Exception as error:  # noqa: BLE001 - every failure becomes a clear, non-leaking answer
        return _failed(path, error, deps)


def _refused(path: str, refusal: Refusal, deps: Dependencies, allow: str = "") -> dict[str, Any]:
    logger.warning("request refused", extra={"reason": refusal.reason, "status": refusal.status})
    count_with_reason("Refusals", refusal.reason)
    answer = _page(path, refusal.status, refusal.reason, refusal.message, deps)
    if refusal.status == 405 and allow:
        answer["headers"]["Allow"] = allow
    return answer


def _failed(path: str, error: Exception, deps: Dependencies) -> dict[str, Any]:
    """Map a failure to a status: misconfiguration 500, Buy with Prime refusing 400, unreachable 502."""
    from shared.buy_with_prime import BuyWithPrimeError, TokenEndpointError

    if isinstance(error, TokenEndpointError) and error.error_code == "invalid_client":
        deps.credentials.forget()  # a corrected secret is then read on the next request
        error = ConfigurationError("CLIENT_CREDENTIALS_SECRET_ARN: Buy with Prime refused the client (invalid_client)")
    if isinstance(error, ConfigurationError):
        logger.error("configuration error", extra={"problem": str(error)})
        status, reason, message = (
            500,
            "configuration",
            "The app is not configured correctly yet. Please contact its developer.",
        )
    elif isinstance(error, BuyWithPrimeError) and not error.transient:
        logger.warning("Buy with Prime refused the request", extra={"problem": type(error).__name__})
        status, reason, message = 400, "upstream_refused", "Buy with Prime did not accept this sign-in. Start again."
    elif isinstance(error, BuyWithPrimeError):
        logger.warning("Buy with Prime unavailable", extra={"problem": str(error)})
        status, reason, message = 502, "upstream_unavailable", "Buy with Prime could not be reached. Please try again."
    else:
        logger.exception("unexpected error")
        status, reason, message = 500, "internal", "Something went wrong on our side. Please try again later."
    count_with_reason("Failures", reason)
    from shared.failures import report_failure

    report_failure(error)
    return _page(path, status, reason, message, deps)


def _page(path: str, status: int, reason: str, message: str, deps: Dependencies) -> dict[str, Any]:
    if path not in BROWSER_ROUTES:
        return json_response(status, {"error": reason, "message": message})
    from oauth import pages

    retry = path == "/install" and status in {400, 403, 502}
    return pages.refusal(_app_name(deps), status, message, "/launch" if retry else None)


def _app_name(deps: Dependencies) -> str:
    """The app's name for a page, also when the configuration itself is what failed."""
    from shared.settings import DEFAULT_APP_NAME

    try:
        return deps.settings.app_name
    except Exception:  # noqa: BLE001 - a configuration error page still needs a name
        return DEFAULT_APP_NAME
