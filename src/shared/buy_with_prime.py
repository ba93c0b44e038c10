"""Buy with Prime HTTP client: the OAuth token endpoint and the GraphQL API.

One reused `requests.Session`, connect/read timeouts, and retries with exponential backoff and full
jitter on throttling (HTTP 429 or a GraphQL ThrottlingError), 5xx and connection errors, all taken
from `shared.budget` (one budget for every timeout). With a `Deadline`, an attempt starts only when
its whole timeout fits in the time left, and a backoff only when an attempt can follow it. A token
request is retried only when it cannot have reached the server (connection refused, connect
timeout) or was answered 429/5xx: after a read timeout the server may already have redeemed the
code or refresh token, and a second try would present a spent one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from shared.budget import Deadline, HttpBudget
from shared.models import ClientCredentials, TokenSet

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_ACCESS_DENIED = {"classification": {"type": "AccessDeniedError"}}


class BuyWithPrimeError(RuntimeError):
    """Base class; `transient` tells whether trying again later may succeed."""

    transient = False


class TransientBuyWithPrimeError(BuyWithPrimeError):
    """Throttling, 5xx or a network failure that outlasted the retry budget."""

    transient = True


class OutOfTimeError(TransientBuyWithPrimeError):
    """No attempt (or no further attempt) fits in the invocation's remaining time."""


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
    ) -> None:
        self._token_url = token_url
        self._graphql_url = graphql_url
        self._session = session
        self._api_version = api_version
        self._budgets = {"token": token_budget or HttpBudget(), "graphql": graphql_budget or HttpBudget()}
        self._sleep = sleep

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
        """Run a query as an installation; return `data` or raise GraphQLError/Transient..."""
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
                if "ThrottlingError" in error.types or "InternalServerError" in error.types:
                    if attempt < attempts and self._backoff("graphql", attempt, deadline):
                        continue
                    raise TransientBuyWithPrimeError(str(error)) from error
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
            raise OutOfTimeError(f"{what} request: no time left for attempt {attempt}")
        last = attempt >= budget.attempts
        try:
            response = self._session.post(url, timeout=budget.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as error:
            # A request that may have reached the server is retried only when repeating it is safe.
            if last or not (idempotent or _never_sent(error)) or not self._backoff(what, attempt, deadline):
                raise TransientBuyWithPrimeError(f"{what} request failed: {type(error).__name__}") from None
            return None
        if response.status_code in RETRYABLE_STATUS:
            if last or not self._backoff(what, attempt, deadline, response.headers.get("Retry-After")):
                raise TransientBuyWithPrimeError(f"{what} answered HTTP {response.status_code} after retries")
            return None
        return response

    def _backoff(self, what: str, attempt: int, deadline: Deadline | None, retry_after: str | None = None) -> bool:
        """Sleep before the next attempt; False (no sleep) when that attempt would not fit in time."""
        budget = self._budgets[what]
        delay = random.uniform(  # noqa: S311 - jitter, not cryptography
            0, min(budget.backoff_cap, budget.backoff_base * 2 ** (attempt - 1))
        )
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), budget.backoff_cap))
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
