"""The token service both functions use: a valid access token for an installation, refreshed
ahead of expiry, with at most one refresh per installation in flight across all Lambdas.

A refresh takes a conditional-write lease on the installation's item; the loser waits and
re-reads. The new pair is stored atomically, conditional on the refresh token it replaced, so a
refresh token is never redeemed twice and never overwritten by an older one. A rejected refresh
token marks the installation as needing re-authorisation instead of being retried forever.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from shared.errors import InstallationNotFoundError, ReauthorizationRequiredError, TokenRefreshBusyError
from shared.models import ClientCredentials, Installation, InstallationStatus, TokenSet
from shared.observability import count, logger
from shared.store.installations import InstallationStore


class TokenEndpoint(Protocol):
    def refresh(self, credentials: ClientCredentials, refresh_token: str) -> TokenSet: ...


class CredentialsSource(Protocol):
    def get(self) -> ClientCredentials: ...


class TokenCache:
    """Access tokens kept in memory between invocations of one Lambda container."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def get(self, installation_id: str, now: float, margin: int) -> str | None:
        with self._lock:
            cached = self._tokens.get(installation_id)
        if cached and cached[1] - margin > now:
            return cached[0]
        return None

    def put(self, installation_id: str, access_token: str, expires_at: int) -> None:
        with self._lock:
            self._tokens[installation_id] = (access_token, expires_at)

    def forget(self, installation_id: str) -> None:
        with self._lock:
            self._tokens.pop(installation_id, None)


class TokenService:
    def __init__(
        self,
        store: InstallationStore,
        endpoint: TokenEndpoint,
        credentials: CredentialsSource,
        cache: TokenCache,
        *,
        refresh_margin: int = 120,
        lease_seconds: int = 30,
        wait_seconds: float = 20.0,
        poll_interval: float = 0.1,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._endpoint = endpoint
        self._credentials = credentials
        self._cache = cache
        self._margin = refresh_margin
        self._lease_seconds = lease_seconds
        self._wait_seconds = wait_seconds
        self._poll = poll_interval
        self._clock = clock
        self._sleep = sleep
        # A pair Buy with Prime issued that could not be stored yet, by installation: its refresh
        # token is the only valid one now, so it is stored on the next try instead of refreshing.
        self._unstored: dict[str, tuple[str, TokenSet]] = {}

    def access_token(self, installation_id: str) -> str:
        """A token valid for at least `refresh_margin` seconds, refreshing it if needed."""
        cached = self._cache.get(installation_id, self._clock(), self._margin)
        if cached:
            return cached
        deadline = self._clock() + self._wait_seconds
        while True:
            installation = self._usable(installation_id)
            now = self._clock()
            if installation.access_token_valid(now, self._margin):
                assert installation.access_token is not None
                self._cache.put(installation_id, installation.access_token, installation.access_token_expires_at)
                return installation.access_token
            token = self._try_refresh(installation, int(now))
            if token is not None:
                return token
            if self._clock() >= deadline:
                raise TokenRefreshBusyError(f"refresh of installation {installation_id} still in progress")
            self._sleep(self._poll)

    def forget(self, installation_id: str) -> None:
        self._cache.forget(installation_id)

    def _usable(self, installation_id: str) -> Installation:
        installation = self._store.get(installation_id)
        if installation is None or installation.status is InstallationStatus.UNINSTALLED:
            raise InstallationNotFoundError(f"no installation {installation_id}")
        if installation.status is InstallationStatus.NEEDS_REAUTHORIZATION or not installation.refresh_token:
            raise ReauthorizationRequiredError(f"installation {installation_id} needs re-authorisation")
        return installation

    def _try_refresh(self, installation: Installation, now: int) -> str | None:
        """Refresh under the lease; None when another invocation holds it (caller waits, re-reads)."""
        installation_id = installation.installation_id
        old_refresh_token = installation.refresh_token
        assert old_refresh_token is not None
        owner = uuid.uuid4().hex
        if not self._store.acquire_refresh_lease(installation_id, owner, old_refresh_token, now, self._lease_seconds):
            return None
        from shared.buy_with_prime import InvalidGrantError  # the client module is only needed here

        unstored = self._unstored.get(installation_id)
        try:
            if unstored and unstored[0] == old_refresh_token:
                tokens = unstored[1]  # already redeemed: never present the old refresh token again
            else:
                tokens = self._endpoint.refresh(self._credentials.get(), old_refresh_token)
        except InvalidGrantError:
            self._store.mark_needs_reauthorization(installation_id, owner, old_refresh_token, "invalid_grant", now)
            self._cache.forget(installation_id)
            count("RefreshRejected")
            logger.warning("refresh token rejected; installation needs re-authorisation")
            raise ReauthorizationRequiredError(f"installation {installation_id} needs re-authorisation") from None
        except BaseException:
            self._store.release_refresh_lease(installation_id, owner)
            count("RefreshFailed")
            raise
        stored_at = int(self._clock())
        self._unstored[installation_id] = (old_refresh_token, tokens)
        stored = self._store.store_refreshed_tokens(installation_id, old_refresh_token, tokens, stored_at)
        self._unstored.pop(installation_id, None)  # stored, or a newer pair was: either way not ours to keep
        if not stored:
            # Only possible if the lease expired mid-refresh and someone else stored a newer pair.
            logger.warning("refreshed tokens not stored: a newer pair was stored meanwhile")
            return None
        count("Refreshes")
        access_token = tokens.access_token.get_secret_value()
        self._cache.put(installation_id, access_token, stored_at + tokens.expires_in)
        return access_token
