"""The few HTML pages a merchant sees. Nothing here ever receives a token."""

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


def installed(installation_id: str, cookies: list[str]) -> dict[str, Any]:
    extra = f"<dl><dt>Installation</dt><dd>{escape(installation_id)}</dd></dl>"
    return html_response(
        200,
        "App installed",
        "Buy with Prime is connected. You can close this window.",
        extra_html=extra,
        cookies=cookies,
    )


def settings(installation: Installation, health: str, launch_url: str) -> dict[str, Any]:
    healthy = health == "healthy"
    status_text = {
        InstallationStatus.ACTIVE: "Installed",
        InstallationStatus.NEEDS_REAUTHORIZATION: "Installed, needs re-authorisation",
        InstallationStatus.UNINSTALLED: "Uninstalled",
    }[installation.status]
    token_text = {
        "healthy": "Healthy",
        "refreshing": "Being renewed right now; reload this page in a moment",
        "needs_reauthorization": "Needs re-authorisation: Buy with Prime no longer accepts this installation's token",
        "unavailable": "Could not be checked right now; try again in a minute",
        "none": "None (the app is uninstalled)",
    }[health]
    rows = (
        f"<dl><dt>Installation</dt><dd>{escape(installation.installation_id)}</dd>"
        f"<dt>Status</dt><dd>{escape(status_text)}</dd>"
        f"<dt>Installed</dt><dd>{_when(installation.installed_at)}</dd>"
        f'<dt>Access token</dt><dd class="{"ok" if healthy else "warn"}">{escape(token_text)}</dd></dl>'
    )
    if health == "needs_reauthorization" or installation.status is InstallationStatus.UNINSTALLED:
        rows += _launch_link(launch_url, "Authorise the app again")
    return html_response(200, "Buy with Prime app settings", "The state of this store's installation.", extra_html=rows)


def refusal(status: int, message: str, launch_url: str | None = None) -> dict[str, Any]:
    extra = _launch_link(launch_url, "Start again") if launch_url else ""
    titles = {400: "Request not valid", 401: "Not verified", 403: "Not allowed", 404: "Not found", 405: "Not allowed"}
    return html_response(status, titles.get(status, "Something went wrong"), message, extra_html=extra)
