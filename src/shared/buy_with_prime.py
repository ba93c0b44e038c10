"""Buy with Prime HTTP client: the OAuth token endpoint and the GraphQL API.

One reused `requests.Session`, connect/read timeouts, and retries with exponential backoff and full
jitter on throttling (HTTP 429 or a GraphQL ThrottlingError), 5xx and connection errors, all taken
from `shared.budget` (one budget for every timeout). With a `Deadline`, an attempt starts only when
its whole timeout fits in the time left, and a backoff only when an attempt can follow it. A token
request is retried only when it cannot have reached the server (connection refused, connect
timeout) or was answered 429/5xx: after a read timeout the server may already have redeemed the
code or refresh token, and a second try would present a spent one.

A `Retry-After` (delta-seconds or HTTP-date, RFC 9110 section 10.2.3) on a 429/503 or a throttled
GraphQL answer is honoured: the client waits at least that long before its next attempt, or stops
retrying at once (transient error, no sleep) when that wait and one more attempt do not fit in the
deadline. Every throttled GraphQL attempt counts `GraphQLThrottled`.

GraphQL calls go through circuit breakers (`shared.circuit`): after consecutive calls that ended
transient they refuse calls at once with `CircuitOpenError` (transient), without a request, until a
probe succeeds. Fairness: a call throttled through all its attempts (`ThrottledError`) counts only
on its installation's own breaker, so one merchant's flash sale, throttled by the API, stops that
merchant's calls and no one else's; 5xx, timeouts and network failures count on the upstream's
breaker, shared by every installation. The token endpoint has none: a refresh is never skipped.
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import requests

from shared.budget import Deadline, HttpBudget
from shared.models import ClientCredentials, TokenSet
from shared.observability import count

if TYPE_CHECKING:
    from shared.circuit import CircuitBreaker

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_ACCESS_DENIED = {"classification": {"type": "AccessDeniedError"}}
# The longest wait a Retry-After can impose on a GraphQL call made without a deadline (seconds).
# With a deadline, the deadline bounds it instead. The token endpoint never waits longer than its
# `backoff_cap`: `HttpBudget.worst_case_seconds`, hence the refresh lease, is computed from it.
MAX_RETRY_AFTER_SECONDS = 30.0
TENANT_BREAKERS = 4096  # installations whose throttling breaker a container remembers (~1 KB each)


class BuyWithPrimeError(RuntimeError):
    """Base class; `transient` tells whether trying again later may succeed."""

    transient = False


class TransientBuyWithPrimeError(BuyWithPrimeError):
    """Throttling, 5xx or a network failure that outlasted the retry budget."""

    transient = True


class OutOfTimeError(TransientBuyWithPrimeError):
    """No attempt (or no further attempt) fits in the invocation's remaining time.

    `attempts_made` is 0 when no request was sent at all: the upstream was never asked."""

    def __init__(self, message: str, *, attempts_made: int = 0) -> None:
        super().__init__(message)
        self.attempts_made = attempts_made


class ThrottledError(TransientBuyWithPrimeError):
    """The API throttled this installation's GraphQL call through every attempt."""


class TokenEndpointError(BuyWithPrimeError):
    """The token endpoint refused the request (4xx) with an OAuth `error` code."""

    def __init__(self, status: int, error_code: str) -> None:
        super().__init__(f"token endpoint refused the request: HTTP {status} {error_code}")
        self.status = status
        self.error_code = error_code


class InvalidGrantError(TokenEndpointError):
    """The code or refresh token is invalid, expired, revoked or already redeemed."""


class GraphQLError(BuyWithPrimeError):
    """HTTP 200 carrying `errors[]`; `types` lists each error's classification type."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        self.types = [_classification(error) for error in errors]
        self.status = 200
        messages = "; ".join(str(error.get("message", "?"))[:200] for error in errors[:3])
        super().__init__(f"GraphQL errors ({', '.join(self.types)}): {messages}")

    @property
    def authentication_failed(self) -> bool:
        """The access token was refused (HTTP 401 or AccessDeniedError): maybe revoked."""
        return self.status == 401 or "AccessDeniedError" in self.types


class BuyWithPrimeClient:
    """Talks to Buy with Prime; receives its session, never builds one per call."""

    def __init__(
        self,
        token_url: str,
        graphql_url: str,
        *,
        session: requests.Session,
        api_version: str | None = None,
        token_budget: HttpBudget | None = None,
        graphql_budget: HttpBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        graphql_circuit: CircuitBreaker | None = None,
    ) -> None:
        from shared.circuit import CircuitBreaker  # shared.circuit imports this module

        self._token_url = token_url
        self._graphql_url = graphql_url
        self._session = session
        self._api_version = api_version
        self._budgets = {"token": token_budget or HttpBudget(), "graphql": graphql_budget or HttpBudget()}
        self._sleep = sleep
        self._wall_clock = wall_clock  # only to read a Retry-After given as an HTTP-date
        # one breaker per client (so per container, across invocations), shared by its threads
        self._graphql_circuit = graphql_circuit or CircuitBreaker("graphql")
        # and one per installation for throttling, the most recently used TENANT_BREAKERS kept
        self._tenant_circuits: OrderedDict[str, CircuitBreaker] = OrderedDict()
        self._tenant_lock = threading.Lock()

    @property
    def graphql_circuit(self) -> CircuitBreaker:
        return self._graphql_circuit

    def exchange_code(
        self,
        credentials: ClientCredentials,
        *,
        code: str,
        code_verifier: str,
        redirect_uri: str,
        deadline: Deadline | None = None,
    ) -> TokenSet:
        return self._token_request(
            credentials,
            {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": code_verifier,
                "redirect_uri": redirect_uri,
            },
            deadline,
        )

    def refresh(self, credentials: ClientCredentials, refresh_token: str, deadline: Deadline | None = None) -> TokenSet:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._token_request(credentials, form, deadline)

    def graphql(
        self,
        access_token: str,
        installation_id: str,
        query: str,
        variables: Mapping[str, Any] | None = None,
        deadline: Deadline | None = None,
    ) -> dict[str, Any]:
        """Run a query as an installation; return `data` or raise GraphQLError/Transient... (CircuitOpenError,
        a TransientBuyWithPrimeError, without any request while the GraphQL circuit is open)."""
        from shared.circuit import Outcome, classify

        tenant, upstream = self.tenant_circuit(installation_id), self._graphql_circuit
        tenant_permit = tenant.admit()
        try:
            permit = upstream.admit()
        except BaseException:
            tenant.settle(tenant_permit, Outcome.NEUTRAL)
            raise
        try:
            data = self._graphql(access_token, installation_id, query, variables, deadline)
        except BaseException as error:
            outcome, throttled = classify(error), isinstance(error, ThrottledError)
            upstream.settle(permit, Outcome.NEUTRAL if throttled else outcome)
            tenant.settle(tenant_permit, outcome if throttled or outcome is Outcome.SUCCESS else Outcome.NEUTRAL)
            raise
        upstream.settle(permit, Outcome.SUCCESS)
        tenant.settle(tenant_permit, Outcome.SUCCESS)
        return data

    def tenant_circuit(self, installation_id: str) -> CircuitBreaker:
        """The installation's own breaker (throttling only); created on first use, LRU-bounded."""
        from shared.circuit import CircuitBreaker

        with self._tenant_lock:
            circuit = self._tenant_circuits.get(installation_id)
            if circuit is None:
                circuit = CircuitBreaker("graphql (one installation)", clock=self._graphql_circuit.clock)
                self._tenant_circuits[installation_id] = circuit
                while len(self._tenant_circuits) > TENANT_BREAKERS:
                    self._tenant_circuits.popitem(last=False)
            self._tenant_circuits.move_to_end(installation_id)
            return circuit

    def _graphql(
        self,
        access_token: str,
        installation_id: str,
        query: str,
        variables: Mapping[str, Any] | None,
        deadline: Deadline | None,
    ) -> dict[str, Any]:
        """The call's attempts, retried within the budget (one outcome for the circuit breaker)."""
        headers = {
            "Authorization": f"Bearer {access_token}",
            "X-Omni-InstallationId": installation_id,
            "Content-Type": "application/json",
        }
        if self._api_version:
            headers["x-api-version"] = self._api_version
        body = {"query": query, "variables": dict(variables or {})}
        attempts = self._budgets["graphql"].attempts
        for attempt in range(1, attempts + 1):
            response = self._send("graphql", self._graphql_url, attempt, deadline, json=body, headers=headers)
            if response is None:
                continue
            payload = _json(response)
            errors = payload.get("errors") or []
            if not errors and response.status_code in {401, 403}:
                errors = [{"message": f"HTTP {response.status_code}", "extensions": _ACCESS_DENIED}]
            if errors:
                error = GraphQLError(errors)
                error.status = response.status_code
                if "ThrottlingError" in error.types:
                    count("GraphQLThrottled")  # every throttled attempt, even when a retry succeeds
                if "ThrottlingError" in error.types or "InternalServerError" in error.types:
                    retry_after = response.headers.get("Retry-After")
                    if attempt < attempts and self._backoff("graphql", attempt, deadline, retry_after):
                        continue
                    kind = ThrottledError if "ThrottlingError" in error.types else TransientBuyWithPrimeError
                    raise kind(str(error)) from error
                raise error
            data = payload.get("data")
            if not isinstance(data, dict):
                raise BuyWithPrimeError("GraphQL answer has no data")
            return data
        raise TransientBuyWithPrimeError("GraphQL API unavailable after retries")

    def _token_request(
        self, credentials: ClientCredentials, form: dict[str, str], deadline: Deadline | None
    ) -> TokenSet:
        form = {
            **form,
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret.get_secret_value(),
        }
        for attempt in range(1, self._budgets["token"].attempts + 1):
            response = self._send("token", self._token_url, attempt, deadline, data=form, idempotent=False)
            if response is None:
                continue
            payload = _json(response)
            if response.status_code >= 400:
                code = str(payload.get("error") or "unknown_error")[:64]
                error_type = InvalidGrantError if code == "invalid_grant" else TokenEndpointError
                raise error_type(response.status_code, code)
            try:
                return TokenSet.model_validate(payload)
            except ValueError:
                raise BuyWithPrimeError("token endpoint answered without access_token/refresh_token") from None
        raise TransientBuyWithPrimeError("token endpoint unavailable after retries")

    def _send(
        self, what: str, url: str, attempt: int, deadline: Deadline | None, *, idempotent: bool = True, **kwargs: Any
    ) -> requests.Response | None:
        """One attempt; None means 'retry after the backoff already slept'."""
        budget = self._budgets[what]
        if deadline is not None and not deadline.fits(budget.attempt_seconds):
            raise OutOfTimeError(f"{what} request: no time left for attempt {attempt}", attempts_made=attempt - 1)
        last = attempt >= budget.attempts
        try:
            response = self._session.post(url, timeout=budget.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as error:
            # A request that may have reached the server is retried only when repeating it is safe.
            if last or not (idempotent or _never_sent(error)) or not self._backoff(what, attempt, deadline):
                raise TransientBuyWithPrimeError(f"{what} request failed: {type(error).__name__}") from None
            return None
        if response.status_code in RETRYABLE_STATUS:
            if what == "graphql" and response.status_code == 429:
                count("GraphQLThrottled")
            if last or not self._backoff(what, attempt, deadline, response.headers.get("Retry-After")):
                throttled = what == "graphql" and response.status_code == 429
                kind = ThrottledError if throttled else TransientBuyWithPrimeError
                raise kind(f"{what} answered HTTP {response.status_code} after retries")
            return None
        return response

    def _backoff(self, what: str, attempt: int, deadline: Deadline | None, retry_after: str | None = None) -> bool:
        """Sleep before the next attempt; False (no sleep) when that attempt would not fit in time."""
        budget = self._budgets[what]
        delay = random.uniform(  # noqa: S311 - jitter, not cryptography
            0, min(budget.backoff_cap, budget.backoff_base * 2 ** (attempt - 1))
        )
        asked = retry_after_seconds(retry_after, self._wall_clock())
        if asked is not None:
            # The wait before the next attempt, honouring Buy with Prime's Retry-After:
            #   wait = max(own jittered backoff, Retry-After)
            # - token endpoint: Retry-After counted up to `backoff_cap` only, so a refresh never
            #   outlasts `HttpBudget.worst_case_seconds` (the refresh lease is derived from it);
            # - GraphQL without a deadline: Retry-After counted up to MAX_RETRY_AFTER_SECONDS;
            # - GraphQL with a deadline: Retry-After in full, bounded by the deadline below.
            if what == "token":
                asked = min(asked, budget.backoff_cap)
            elif deadline is None:
                asked = min(asked, MAX_RETRY_AFTER_SECONDS)
            delay = max(delay, asked)
        # Sleep only when the wait plus one whole attempt (connect + read timeout) still fits in the
        # deadline; otherwise the caller gives up now (transient error) rather than sleep in vain.
        if deadline is not None and not deadline.fits(delay + budget.attempt_seconds):
            return False
        self._sleep(delay)
        return True


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        if response.status_code >= 400:
            return {}
        raise BuyWithPrimeError(f"non-JSON answer (HTTP {response.status_code})") from None
    return payload if isinstance(payload, dict) else {}


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A Retry-After header's wait in seconds (RFC 9110 10.2.3), `now` being the wall clock (epoch
    seconds) for the HTTP-date form; a date already past waits 0. None when absent or malformed
    (garbage, negative or fractional numbers, unparseable dates): then only the own backoff counts."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # delta-seconds = 1*DIGIT
        return float(int(value)) if len(value) <= 9 else 1e9  # no int() of a 5,000-digit string
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.fromtimestamp(now, UTC)).total_seconds())


def _never_sent(error: Exception) -> bool:
    """True when the connection was never established, so the server cannot have acted on it."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return type(reason).__name__ in {"NewConnectionError", "NameResolutionError"}


def _classification(error: Mapping[str, Any]) -> str:
    extensions = error.get("extensions") or {}
    classification = extensions.get("classification") or {}
    if isinstance(classification, dict):
        return str(classification.get("type") or classification.get("errorType") or "UnknownError")
    return str(classification or "UnknownError")
