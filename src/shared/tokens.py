"""The token service both functions use: a valid access token for an installation, refreshed
ahead of expiry, with at most one refresh per installation in flight across all Lambdas.

- A refresh takes a conditional-write lease on the installation's item, held longer than anything
  its holder can spend (`TimeBudget.lease_seconds`); everything it does is bounded by the caller's
  `Deadline` (the Lambda's remaining time).
- Stale-while-revalidate: while one container refreshes, the others keep using the stored access
  token while it is still valid; they read, they never make conditional writes bound to fail.
- Fencing: the new pair is stored only while the lease is still held and the redeemed refresh
  token is still the stored one; a winning store leaves the installation active. An
  `invalid_grant` after the stored refresh token changed is not a rejection: the newer pair is used.
- Durable before anything else can fail: a redeemed pair is retried to the table with its own
  backoff; if it still is not stored, it is parked in a rescue item (another partition) that every
  container reads before it redeems anything.
- The in-memory cache is keyed by installation generation: a re-install never sees an old token.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from shared.budget import DEFAULT_BUDGET, Deadline, TimeBudget
from shared.errors import InstallationNotFoundError, ReauthorizationRequiredError, TokenRefreshBusyError
from shared.models import ClientCredentials, Installation, InstallationStatus, TokenSet
from shared.observability import count, logger
from shared.store.installations import InstallationStore

# Trying these again cannot succeed: the table, the role or the request is wrong.
PERMANENT_DYNAMODB_ERRORS = frozenset({"ResourceNotFoundException", "AccessDeniedException", "ValidationException"})


class TokenEndpoint(Protocol):
    def refresh(
        self, credentials: ClientCredentials, refresh_token: str, deadline: Deadline | None = None
    ) -> TokenSet: ...


class CredentialsSource(Protocol):
    def get(self) -> ClientCredentials: ...


@dataclass(frozen=True)
class _Cached:
    access_token: str
    expires_at: int
    generation: int


class TokenCache:
    """Access tokens kept in memory between invocations of one Lambda container."""

    def __init__(self) -> None:
        self._tokens: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def get(self, installation_id: str, now: float, margin: float, generation: int | None = None) -> str | None:
        with self._lock:
            cached = self._tokens.get(installation_id)
        if cached is None or (generation is not None and cached.generation != generation):
            return None
        return cached.access_token if cached.expires_at - margin > now else None

    def put(self, installation_id: str, access_token: str, expires_at: int, generation: int) -> None:
        with self._lock:
            self._tokens[installation_id] = _Cached(access_token, expires_at, generation)

    def expires_at(self, installation_id: str, access_token: str) -> int | None:
        """When the cached `access_token` expires (None when another or no token is cached)."""
        with self._lock:
            cached = self._tokens.get(installation_id)
        return cached.expires_at if cached and cached.access_token == access_token else None

    def forget(self, installation_id: str, access_token: str | None = None) -> None:
        """Drop the cached token (only if it is `access_token`, when given)."""
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached and (access_token is None or cached.access_token == access_token):
                del self._tokens[installation_id]


class TokenService:
    def __init__(
        self,
        store: InstallationStore,
        endpoint: TokenEndpoint,
        credentials: CredentialsSource,
        cache: TokenCache,
        *,
        budget: TimeBudget = DEFAULT_BUDGET,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        jitter: float | None = None,
    ) -> None:
        budget.check()
        self._store = store
        self._endpoint = endpoint
        self._credentials = credentials
        self._cache = cache
        self._budget = budget
        self._clock = clock
        self._sleep = sleep
        # Per container: caches of many containers do not all miss in the same second.
        spread = random.uniform(0, budget.refresh_jitter_seconds) if jitter is None else jitter  # noqa: S311
        self.refresh_ahead = budget.refresh_ahead_seconds + spread
        # A pair Buy with Prime issued that could not be stored (nor rescued) yet, by installation:
        # its refresh token is the only valid one now, so it is stored on the next try.
        self._unstored: dict[str, tuple[str, TokenSet]] = {}

    def access_token(
        self, installation_id: str, *, deadline: Deadline | None = None, generation: int | None = None
    ) -> str:
        """A token valid for at least `min_validity_seconds`, refreshed ahead of expiry when due."""
        cached = self._cache.get(installation_id, self._clock(), self.refresh_ahead, generation)
        if cached:
            return cached
        return self._obtain(installation_id, deadline or self._default_deadline(), rejected=None)[0]

    def replace_rejected(self, installation_id: str, rejected: str, *, deadline: Deadline | None = None) -> str:
        """The API refused `rejected` (revoked?): forget it, refresh once, return the new token."""
        return self.replacement(installation_id, rejected, deadline=deadline)[0]

    def replacement(self, installation_id: str, rejected: str, *, deadline: Deadline | None = None) -> tuple[str, bool]:
        """As `replace_rejected`, and whether the token was newly issued for this call (False: another
        container's newer token, issued before `rejected` was refused, so maybe refused too)."""
        self._cache.forget(installation_id, rejected)
        count("AccessTokenRejected")
        return self._obtain(installation_id, deadline or self._default_deadline(), rejected=rejected)

    def forget(self, installation_id: str) -> None:
        self._cache.forget(installation_id)

    def expires_at(self, installation_id: str, access_token: str) -> int | None:
        """When `access_token` (as this service just returned it) expires, if this container knows."""
        return self._cache.expires_at(installation_id, access_token)

    def offer(self, installation_id: str, access_token: str, expires_at: int, generation: int) -> None:
        """An access token read with the installation's status (the events function's one lookup
        per batch): cached when fresh, so a cold container reads no installation item for it."""
        if expires_at - self.refresh_ahead > self._clock():
            self._cache.put(installation_id, access_token, expires_at, generation)

    def refresh_idle(self, installation_id: str, refreshed_before: int, *, deadline: Deadline) -> bool:
        """The idle sweep: refresh an installation nobody refreshed since `refreshed_before`, through
        the same lease (never alongside another refresh). False when there was nothing to do: it
        was refreshed meanwhile, a refresh is in progress, or another container won the lease."""
        installation = self._usable(installation_id)
        now = self._clock()
        if installation.tokens_refreshed_at >= refreshed_before or installation.lease_expires_at >= now:
            return False
        return self._try_refresh(installation, int(now), deadline) is not None

    def _default_deadline(self) -> Deadline:
        return Deadline.after(self._budget.worst_case_refresh_seconds + self._budget.max_wait_seconds)

    def _obtain(self, installation_id: str, deadline: Deadline, rejected: str | None) -> tuple[str, bool]:
        """A usable token, and whether this call refreshed it."""
        budget = self._budget
        waited = 0.0
        while True:
            installation = self._usable(installation_id)
            now = self._clock()
            token = installation.access_token
            valid_for = installation.access_token_expires_at - now
            fresh = bool(token) and token != rejected and valid_for > self.refresh_ahead
            if fresh:
                assert token is not None
                self._remember(installation, token)
                return token, False
            usable = bool(token) and token != rejected and valid_for > budget.min_validity_seconds
            if installation.lease_expires_at < now:  # nobody refreshing (or a dead holder's lease)
                try:
                    refreshed = self._try_refresh(installation, int(now), deadline)
                except Exception as error:
                    if not (usable and getattr(error, "transient", False)):
                        raise
                    count("StaleTokenServedAfterRefreshFailure")
                    return str(token), False  # refresh later; this one is still valid
                if refreshed is not None:
                    return refreshed, True
                continue  # lost the lease race or the store: read what the winner stored
            if usable:  # stale-while-revalidate: another container is refreshing right now
                assert token is not None
                count("StaleTokenServed")
                return token, False
            if waited >= budget.max_wait_seconds or not deadline.fits(budget.poll_seconds):
                raise TokenRefreshBusyError(f"refresh of installation {installation_id} still in progress")
            self._sleep(budget.poll_seconds)
            waited += budget.poll_seconds

    def _remember(self, installation: Installation, token: str) -> None:
        self._cache.put(
            installation.installation_id, token, installation.access_token_expires_at, installation.generation
        )

    def _usable(self, installation_id: str) -> Installation:
        installation = self._store.get(installation_id)
        if installation is None or installation.status is InstallationStatus.UNINSTALLED:
            self._cache.forget(installation_id)
            raise InstallationNotFoundError(f"no installation {installation_id}")
        if installation.status is InstallationStatus.NEEDS_REAUTHORIZATION or not installation.refresh_token:
            self._cache.forget(installation_id)
            raise ReauthorizationRequiredError(f"installation {installation_id} needs re-authorisation")
        return installation

    def _try_refresh(self, installation: Installation, now: int, deadline: Deadline) -> str | None:
        """Refresh under the lease; None when another invocation won it (the caller re-reads)."""
        installation_id = installation.installation_id
        old_refresh_token = installation.refresh_token
        assert old_refresh_token is not None
        owner = uuid.uuid4().hex
        lease = self._budget.lease_seconds(deadline)
        taken = self._store.acquire_refresh_lease(installation_id, owner, old_refresh_token, now, lease)
        if taken is None:
            return None
        from shared.buy_with_prime import InvalidGrantError  # the client module is only needed here

        try:
            tokens, rescued = self._redeemed_already(installation_id, old_refresh_token, now, taken.after_unfinished)
            if tokens is None:
                reserve = self._budget.store_reserve_seconds
                tokens = self._endpoint.refresh(self._credentials.get(), old_refresh_token, deadline.less(reserve))
        except InvalidGrantError:
            return self._rejected(installation, owner, now)
        except BaseException:
            self._store.release_refresh_lease(installation_id, owner)
            count("RefreshFailed")
            raise
        return self._store_pair(installation, owner, old_refresh_token, tokens, deadline, rescued=rescued)

    def _redeemed_already(
        self, installation_id: str, old_refresh_token: str, now: int, after_unfinished: bool
    ) -> tuple[TokenSet | None, bool]:
        """A pair issued for this refresh token but not stored (this container's memory, or the
        rescue item any container may have parked): never present the old refresh token again.
        The flag tells whether the pair came from the rescue item (deleted once stored). The rescue
        item is read only when the lease followed an unfinished one: only then can a pair be parked
        (InstallationStore.acquire_refresh_lease), so an ordinary refresh costs no extra read."""
        unstored = self._unstored.get(installation_id)
        if unstored and unstored[0] == old_refresh_token:
            return unstored[1], False
        if not after_unfinished:
            return None, False
        rescued = self._store.rescued_tokens(installation_id, old_refresh_token, now)
        if rescued is not None:
            count("RescuedPairAdopted")
            logger.warning("adopting a refreshed pair parked by a container that could not store it")
        return rescued, rescued is not None

    def _rejected(self, installation: Installation, owner: str, now: int) -> str | None:
        installation_id = installation.installation_id
        old_refresh_token = installation.refresh_token or ""
        if self._store.mark_needs_reauthorization(installation_id, owner, old_refresh_token, "invalid_grant", now):
            self._cache.forget(installation_id)
            count("RefreshRejected")
            logger.warning("refresh token rejected; installation needs re-authorisation")
            raise ReauthorizationRequiredError(f"installation {installation_id} needs re-authorisation")
        # The stored refresh token changed (or the lease moved) meanwhile: a newer pair exists.
        count("RefreshRejectionSuperseded")
        logger.warning("refresh token rejected after a newer pair was stored; using the newer pair")
        return None

    def _store_pair(
        self,
        installation: Installation,
        owner: str,
        old_refresh_token: str,
        tokens: TokenSet,
        deadline: Deadline,
        *,
        rescued: bool = False,
    ) -> str | None:
        installation_id = installation.installation_id
        self._unstored[installation_id] = (old_refresh_token, tokens)
        stored_at = int(self._clock())
        try:
            store = self._store
            stored = self._with_store_retries(
                lambda: store.store_refreshed_tokens(installation_id, owner, old_refresh_token, tokens, stored_at),
                deadline,
            )
        except Exception:  # noqa: BLE001 - the table is unavailable: park the pair elsewhere, durably
            return self._rescue(installation, old_refresh_token, tokens, stored_at, deadline)
        self._unstored.pop(installation_id, None)
        if rescued:  # only then is there a rescue item: no extra write on every refresh
            self._store.forget_rescued_tokens(installation_id)
        if not stored:
            # Applied by an earlier attempt whose answer was lost, or fenced off: read what is stored.
            logger.warning("refreshed tokens not stored by this call; re-reading the installation")
            return None
        count("Refreshes")
        access_token = tokens.access_token.get_secret_value()
        expires_at = stored_at + tokens.expires_in
        self._cache.put(installation_id, access_token, expires_at, installation.generation)
        return access_token

    def _rescue(
        self, installation: Installation, old_refresh_token: str, tokens: TokenSet, stored_at: int, deadline: Deadline
    ) -> str:
        installation_id = installation.installation_id
        try:
            self._with_store_retries(
                lambda: self._store.rescue_tokens(installation_id, old_refresh_token, tokens, stored_at), deadline
            )
        except Exception:  # noqa: BLE001 - only this container's memory holds the pair now
            count("RefreshedPairUnstored")
            logger.error("refreshed tokens could not be stored nor rescued; kept in this container only")
        else:
            self._unstored.pop(installation_id, None)
            count("RefreshedPairRescued")
            logger.warning("refreshed tokens parked in the rescue item: the installation item is unavailable")
        return tokens.access_token.get_secret_value()

    def _with_store_retries(self, write: Callable[[], bool], deadline: Deadline) -> bool:
        """Retry a DynamoDB write (botocore already retried inside) with backoff within the deadline."""
        attempt = 0
        while True:
            try:
                return write()
            except Exception as error:
                if _error_code(error) in PERMANENT_DYNAMODB_ERRORS:
                    raise
                attempt += 1
                delay = random.uniform(0, min(self._budget.store_backoff_cap, 0.05 * 2**attempt))  # noqa: S311
                if attempt >= self._budget.store_calls or not deadline.fits(delay + 0.5):
                    raise
                self._sleep(delay)


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or "")
