"""The app-install flow's domain logic: launch, install, describe and uninstall an installation.

Every refusal is raised as `Refusal` before any write, so a refused request has no side effect.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from oauth import pkce
from oauth.refusal import Refusal
from shared.models import ClientCredentials, Installation, InstallationStatus, PendingAuthorization
from shared.store.installations import UninstallOutcome

if TYPE_CHECKING:
    from shared.budget import Deadline
    from shared.buy_with_prime import BuyWithPrimeClient
    from shared.store.installations import InstallationStore
    from shared.store.oauth_states import OAuthStateStore
    from shared.store.uninstall_tokens import UninstallTokenStore

# __Host- cookies must be Secure, Path=/ and host-only: no other subdomain can set or read it.
BINDING_COOKIE = "__Host-bwp-oauth"


@dataclass(frozen=True)
class Launch:
    authorize_url: str
    binding_cookie: str


def launch(
    *,
    states: OAuthStateStore,
    credentials: ClientCredentials,
    authorize_url: str,
    install_url: str,
    ttl_seconds: int,
    now: int,
) -> Launch:
    """Start a flow: a fresh state and PKCE verifier kept server-side, bound to this browser."""
    state, verifier, nonce = pkce.new_state(), pkce.new_code_verifier(), pkce.new_browser_nonce()
    states.put(
        PendingAuthorization(
            state=state,
            code_verifier=verifier,
            browser_binding=pkce.binding_of(nonce),
            created_at=now,
            expires_at=now + ttl_seconds,
        )
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": credentials.client_id,
            "state": state,
            "redirect_uri": install_url,
            "code_challenge": pkce.code_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in authorize_url else "?"
    cookie = f"{BINDING_COOKIE}={nonce}; Max-Age={ttl_seconds}; Path=/; Secure; HttpOnly; SameSite=Lax"
    return Launch(authorize_url=f"{authorize_url}{separator}{query}", binding_cookie=cookie)


def claim_pending_authorization(
    *, states: OAuthStateStore, state: str | None, binding_nonce: str | None, now: int
) -> PendingAuthorization:
    """Consume the launched flow's state exactly once, refusing any state not issued to this browser."""
    if not state:
        raise Refusal(
            400, "missing_state", "The request has no state parameter. Start again from the app's Launch link."
        )
    pending = states.get(state)
    if pending is None:
        raise Refusal(
            400, "unknown_state", "This sign-in link is unknown or was already used. Start again from Launch."
        )
    if pending.expires_at <= now:
        raise Refusal(400, "expired_state", "This sign-in link has expired. Start again from the app's Launch link.")
    if not binding_nonce or pkce.binding_of(binding_nonce) != pending.browser_binding:
        raise Refusal(403, "browser_mismatch", "This sign-in was started in another browser. Start again from Launch.")
    claimed = states.consume(state, pending.browser_binding, now)
    if claimed is None:  # lost a race with a concurrent use of the same state
        raise Refusal(
            400, "unknown_state", "This sign-in link is unknown or was already used. Start again from Launch."
        )
    return claimed


def install(
    *,
    installations: InstallationStore,
    client: BuyWithPrimeClient,
    credentials: ClientCredentials,
    pending: PendingAuthorization,
    installation_id: str,
    code: str,
    install_url: str,
    now: int,
    deadline: Deadline | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Exchange the code with the flow's verifier and store the installation's tokens, stamped
    with the time they are stored (in ms: an uninstall is ordered strictly against it)."""
    tokens = client.exchange_code(
        credentials, code=code, code_verifier=pending.code_verifier, redirect_uri=install_url, deadline=deadline
    )
    installations.save_installation(installation_id, tokens, max(now, clock()))


def uninstall(
    *,
    installations: InstallationStore,
    uninstall_tokens: UninstallTokenStore,
    installation_id: str,
    token_digest: str,
    issued_at: int | None,
    expires_at: int | None,
    now_ms: int,
) -> tuple[UninstallOutcome, bool]:
    """Forget the tokens; needs no live token, is idempotent and spares a newer re-installation.

    The verification token is single-use: its first sighting is remembered, and a repeat re-applies
    the same conditional uninstall (same cut-off), whatever its claims. The cut-off is the latest
    the request can have been issued: when it was first seen, or the end of its `iat` second
    (already capped at now) if that is earlier. An installation stored after the cut-off, to the
    millisecond, is never removed: a re-install, even in the same second, follows the uninstall
    call's first arrival (Buy with Prime sends it when the merchant uninstalls; a re-install needs
    the consent page), so a replay can never reach it.
    Nothing is written for an installation that does not exist or is already uninstalled.
    Returns the outcome and whether the token had been seen before.
    """
    current = installations.get(installation_id)
    if current is None:
        return UninstallOutcome.NOT_FOUND, False
    if current.status is InstallationStatus.UNINSTALLED:
        return UninstallOutcome.ALREADY_UNINSTALLED, False
    first_seen_ms, repeat = uninstall_tokens.first_seen(token_digest, installation_id, now_ms, expires_at)
    cut_off_ms = first_seen_ms if issued_at is None else min(first_seen_ms, issued_at * 1000 + 999)
    return installations.uninstall(installation_id, requested_at_ms=cut_off_ms, now=now_ms // 1000), repeat


def find_installation(*, installations: InstallationStore, installation_id: str) -> Installation:
    installation = installations.get(installation_id)
    if installation is None:
        raise Refusal(404, "unknown_installation", "This store has not installed the app. Install it from Launch.")
    return installation
