"""The few HTML pages a merchant sees, each named for the app and worded for a merchant, not an
engineer. Nothing here ever receives a token."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from oauth.http import html_response
from shared.models import Installation, InstallationStatus


def _when(epoch: int | None) -> str:
    if not epoch:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _launch_link(launch_url: str, text: str) -> str:
    return f'<p><a href="{escape(launch_url)}">{escape(text)}</a></p>'


def installed(app_name: str, installation_id: str, cookies: list[str]) -> dict[str, Any]:
    """After the install, and again when the merchant reloads that page (the sign-in link is spent
    by then, the installation is what counts)."""
    extra = f"<dl><dt>Store's installation</dt><dd>{escape(installation_id)}</dd></dl>"
    return html_response(
        200,
        "App installed",
        f"{app_name} is connected to your Buy with Prime store. You can close this window.",
        app_name=app_name,
        extra_html=extra,
        cookies=cookies,
    )


# Settings: one status, from the stored installation and what Buy with Prime answers now.
# health: "healthy", "refreshing", "needs_reauthorization", "unavailable", "none" (routes.settings)
_STATUS = {
    "healthy": ("ok", "Connected", "Buy with Prime accepts this app's access to your store."),
    "refreshing": ("ok", "Connected", "The app is renewing its access right now; reload this page in a moment."),
    "needs_reauthorization": (
        "warn",
        "Needs your permission again",
        "Buy with Prime no longer accepts this app's access to your store. Authorise the app again to reconnect it.",
    ),
    "unavailable": ("warn", "Could not be checked", "Buy with Prime could not be asked just now; try again soon."),
    "none": ("warn", "Not installed", "This store has uninstalled the app. Install it again to reconnect it."),
}


def settings(app_name: str, installation: Installation, health: str, launch_url: str) -> dict[str, Any]:
    if installation.status is InstallationStatus.UNINSTALLED:
        health = "none"
    elif installation.status is InstallationStatus.NEEDS_REAUTHORIZATION and health != "healthy":
        health = "needs_reauthorization"
    css, status, explanation = _STATUS[health]
    rows = (
        f'<dl><dt>Status</dt><dd class="{css}">{escape(status)}</dd>'
        f"<dt>Installed</dt><dd>{_when(installation.installed_at)}</dd>"
        f"<dt>Store's installation</dt><dd>{escape(installation.installation_id)}</dd></dl>"
        f"<p>{escape(explanation)}</p>"
    )
    if health == "needs_reauthorization":
        rows += _launch_link(launch_url, "Authorise the app again")
    elif health == "none":
        rows += _launch_link(launch_url, "Install the app again")
    return html_response(
        200, "Settings", f"How {app_name} is connected to your store.", app_name=app_name, extra_html=rows
    )


# What Buy with Prime may send back to the Install URL instead of a code (RFC 6749, 4.1.2.1), in
# plain words; any other value is shown as "an error" without echoing it.
AUTHORIZE_ERRORS = {
    "access_denied": (200, "You declined", "You chose not to install {app}. Nothing was installed or changed."),
    "server_error": (502, "Buy with Prime had a problem", "Buy with Prime could not finish installing {app}."),
    "temporarily_unavailable": (
        502,
        "Buy with Prime is busy",
        "Buy with Prime could not finish installing {app} just now.",
    ),
}


def authorize_error(app_name: str, error: str, launch_url: str, cookies: list[str]) -> dict[str, Any]:
    status, title, message = AUTHORIZE_ERRORS.get(
        error, (400, "Not installed", "Buy with Prime could not install {app}: the sign-in request was refused.")
    )
    link = _launch_link(launch_url, "Start again")
    return html_response(
        status, title, message.format(app=app_name), app_name=app_name, extra_html=link, cookies=cookies
    )


def refusal(app_name: str, status: int, message: str, launch_url: str | None = None) -> dict[str, Any]:
    extra = _launch_link(launch_url, "Start again") if launch_url else ""
    titles = {400: "Request not valid", 401: "Not verified", 403: "Not allowed", 404: "Not found", 405: "Not allowed"}
    return html_response(
        status, titles.get(status, "Something went wrong"), message, app_name=app_name, extra_html=extra
    )
