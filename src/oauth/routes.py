"""One function per route: parse the request, call the flow, shape the response."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from oauth import flow, pages
from oauth.dependencies import Dependencies
from oauth.http import HttpRequest, json_response, redirect
from oauth.pages import AUTHORIZE_ERRORS
from oauth.refusal import Refusal
from shared.observability import count, count_with_reason, logger

if TYPE_CHECKING:
    from oauth.verification import VerifiedRequest
    from shared.budget import Deadline
    from shared.models import Installation


def base_url(request: HttpRequest, deps: Dependencies) -> str:
    """The public origin the URLs were registered under (custom domain or the API's own)."""
    return deps.settings.public_base_url or f"https://{request.domain_name}"


def _verified(request: HttpRequest, deps: Dependencies) -> VerifiedRequest:
    from oauth.verification import VerificationError

    try:
        verified = deps.verifier.verify(request, base_url(request, deps))
    except VerificationError as error:
        status = 401 if error.reason == "missing_token" else 403
        message = (
            "This link has expired. Open the app again from your Buy with Prime account."
            if error.reason in ("expired_token", "token_too_old")
            else "This request could not be verified as coming from Buy with Prime."
        )
        raise Refusal(status, error.reason, message) from None
    logger.append_keys(installation_id=verified.installation_id)
    if verified.without_times:  # accepted (RequireVerificationTokenTimes is false): counted
        count("VerificationTokenWithoutTimes")
        logger.warning("verification token without exp or iat accepted")
    return verified


def _verified_installation(request: HttpRequest, deps: Dependencies) -> str:
    return _verified(request, deps).installation_id


def launch(request: HttpRequest, deps: Dependencies, deadline: Deadline) -> dict[str, Any]:
    origin = base_url(request, deps)
    started = flow.launch(
        states=deps.states,
        credentials=deps.credentials.get(),
        authorize_url=deps.settings.bwp_authorize_url,
        install_url=f"{origin}/install",
        ttl_seconds=deps.settings.oauth_state_ttl_seconds,
        now=int(time.time()),
    )
    count("Launches")
    return redirect(started.authorize_url, cookies=[started.binding_cookie])


CLEAR_BINDING_COOKIE = f"{flow.BINDING_COOKIE}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"


def install(request: HttpRequest, deps: Dependencies, deadline: Deadline) -> dict[str, Any]:
    app_name = deps.settings.app_name
    if error := request.query.get("error"):  # the merchant declined, or Buy with Prime could not go on
        count_with_reason("InstallsNotAuthorised", error if error in AUTHORIZE_ERRORS else "other")
        logger.info("authorisation not given", extra={"error": error if error in AUTHORIZE_ERRORS else "other"})
        launch_url = f"{base_url(request, deps)}/launch"
        return pages.authorize_error(app_name, error, launch_url, cookies=[CLEAR_BINDING_COOKIE])
    installation_id = _verified_installation(request, deps)
    code = request.query.get("code")
    if not code:
        raise Refusal(400, "missing_code", "The request has no authorization code. Start again from Launch.")
    now = int(time.time())
    try:
        pending = flow.claim_pending_authorization(
            states=deps.states,
            state=request.query.get("state"),
            binding_nonce=request.cookies.get(flow.BINDING_COOKIE),
            now=now,
        )
    except Refusal as refusal:
        if refusal.reason != "unknown_state" or not _installed(installation_id, deps):
            raise
        # the merchant reloaded the page (the link is spent): show what it installed, change nothing
        return pages.installed(app_name, installation_id, cookies=[CLEAR_BINDING_COOKIE])
    flow.install(
        installations=deps.installations,
        client=deps.buy_with_prime,
        credentials=deps.credentials.get(),
        pending=pending,
        installation_id=installation_id,
        code=code,
        install_url=f"{base_url(request, deps)}/install",
        now=now,
        deadline=deadline,
    )
    deps.tokens.forget(installation_id)
    count("Installs")
    logger.info("installation stored")
    if deps.settings.post_install_redirect_url:
        return redirect(deps.settings.post_install_redirect_url, cookies=[CLEAR_BINDING_COOKIE])
    return pages.installed(app_name, installation_id, cookies=[CLEAR_BINDING_COOKIE])


def _installed(installation_id: str, deps: Dependencies) -> bool:
    from shared.models import InstallationStatus

    installation = deps.installations.get(installation_id)
    return installation is not None and installation.status is InstallationStatus.ACTIVE


def settings(request: HttpRequest, deps: Dependencies, deadline: Deadline) -> dict[str, Any]:
    installation_id = _verified_installation(request, deps)
    installation = flow.find_installation(installations=deps.installations, installation_id=installation_id)
    health = _access_health(installation, deps, deadline)
    app_url = deps.settings.partner_app_url
    if app_url and health in ("healthy", "refreshing", "unavailable"):  # connected: the app takes over
        from oauth.handoff import handoff_url, session_token

        token = session_token(
            deps.signing_secret.get(),
            issuer=base_url(request, deps),
            app_url=app_url,
            installation_id=installation_id,
            now=int(time.time()),
        )
        count("SettingsHandedOff")
        return redirect(handoff_url(app_url, token))
    return pages.settings(deps.settings.app_name, installation, health, f"{base_url(request, deps)}/launch")


def _access_health(installation: Installation, deps: Dependencies, deadline: Deadline) -> str:
    """Ask the token service (refreshing if due, within this invocation's time) rather than trusting
    the stored status alone; a refresh held by another container is reported, not waited out."""
    from shared.errors import InstallationNotFoundError, ReauthorizationRequiredError, TokenRefreshBusyError

    try:
        token = deps.tokens.access_token(
            installation.installation_id, deadline=deadline, generation=installation.generation
        )
        _check_with_the_api(installation.installation_id, token, deps, deadline)
    except InstallationNotFoundError:
        return "none"
    except ReauthorizationRequiredError:
        return "needs_reauthorization"
    except TokenRefreshBusyError:
        return "refreshing"
    except Exception:  # noqa: BLE001 - a transient failure must not break the settings page
        logger.warning("token health could not be checked", exc_info=True)
        return "unavailable"
    return "healthy"


# The smallest query the app may run: asks Buy with Prime whether it still accepts the token.
STORE_QUERY = "query BuyWithPrimeStore { buyWithPrimeStore { siteId widgetId } }"


def _check_with_the_api(installation_id: str, token: str, deps: Dependencies, deadline: Deadline) -> None:
    """A revoked token shows as such now, not when the cache expires: one query; a refused token is
    replaced once (ReauthorizationRequiredError when Buy with Prime rejects the refresh too)."""
    from shared.buy_with_prime import GraphQLError

    try:
        deps.buy_with_prime.graphql(token, installation_id, STORE_QUERY, deadline=deadline)
    except GraphQLError as error:
        if not error.authentication_failed:
            logger.warning("store query failed on Settings", extra={"types": error.types})
            return
        logger.warning("access token refused by the API on Settings; refreshing once")
        deps.tokens.replace_rejected(installation_id, token, deadline=deadline)


def uninstall(request: HttpRequest, deps: Dependencies, deadline: Deadline) -> dict[str, Any]:
    verified = _verified(request, deps)
    outcome, repeat = flow.uninstall(
        installations=deps.installations,
        uninstall_tokens=deps.uninstall_tokens,
        installation_id=verified.installation_id,
        token_digest=verified.token_digest,
        issued_at=verified.issued_at,
        expires_at=verified.expires_at,
        now_ms=int(time.time() * 1000),
    )
    deps.tokens.forget(verified.installation_id)
    count("UninstallTokenRepeated" if repeat else "Uninstalls")
    logger.info("uninstall processed", extra={"outcome": outcome.value, "repeat": repeat})
    return json_response(200, {"status": outcome.value})
