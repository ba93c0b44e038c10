"""The token broker: the partner's own code gets an installation's valid access token, or runs a
GraphQL query as the installation, through the same token service and refresh lease as the
integration's functions. So it never redeems a refresh token itself (rotating refresh tokens burn
when redeemed twice) and never races the store. The refresh token never leaves the table.

Errors are typed (`BrokerError.code`): installation_not_found, uninstalled, needs_reauthorization,
refresh_in_progress, upstream_unavailable, bad_request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.buy_with_prime import BuyWithPrimeError
from shared.errors import InstallationNotFoundError, ReauthorizationRequiredError, TokenRefreshBusyError

if TYPE_CHECKING:
    from shared.budget import Deadline
    from shared.buy_with_prime import BuyWithPrimeClient
    from shared.store.installations import InstallationStore
    from shared.tokens import TokenService

TYPED = (InstallationNotFoundError, ReauthorizationRequiredError, TokenRefreshBusyError, BuyWithPrimeError)
MAX_QUERY_BYTES = 32_768
MAX_TOKEN_REPLACEMENTS = 1  # a refused token is replaced once per call, as the events function does


class BrokerError(Exception):
    """A refusal the caller can act on: `code` (stable, typed), the HTTP status, a short message."""

    def __init__(self, code: str, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.status, self.message, self.retry_after = code, status, message, retry_after


class TokenBroker:
    def __init__(self, tokens: TokenService, installations: InstallationStore, api: BuyWithPrimeClient) -> None:
        self._tokens = tokens
        self._installations = installations
        self._api = api

    def token(self, installation_id: str, deadline: Deadline) -> dict[str, Any]:
        """The installation's access token (valid for at least the token service's minimum) and when
        it expires, in epoch seconds."""
        token = self._access_token(installation_id, deadline)
        expires_at = self._tokens.expires_at(installation_id, token)
        if expires_at is None:  # served while another container refreshes: read what is stored
            stored = self._installations.get(installation_id)
            expires_at = stored.access_token_expires_at if stored else 0
        return {"installationId": installation_id, "accessToken": token, "expiresAt": expires_at}

    def graphql(
        self, installation_id: str, query: str, variables: dict[str, Any] | None, deadline: Deadline
    ) -> dict[str, Any]:
        """Buy with Prime's answer to `query` run as the installation: `data`, or its `errors`."""
        from shared.buy_with_prime import GraphQLError

        if len(query.encode("utf-8", "surrogatepass")) > MAX_QUERY_BYTES:
            raise BrokerError("bad_request", 400, f"query over {MAX_QUERY_BYTES} bytes")
        token = self._access_token(installation_id, deadline)
        for replacements in range(MAX_TOKEN_REPLACEMENTS + 1):
            try:
                return {"data": self._api.graphql(token, installation_id, query, variables, deadline=deadline)}
            except GraphQLError as error:
                if error.authentication_failed and replacements < MAX_TOKEN_REPLACEMENTS:
                    token = self._replacement(installation_id, token, deadline)
                    continue
                return {"data": None, "errors": error.errors}
            except BuyWithPrimeError as error:
                if error.transient:
                    raise BrokerError("upstream_unavailable", 503, "Buy with Prime unavailable", 5) from None
                raise BrokerError("upstream_refused", 502, "Buy with Prime did not accept the request") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _access_token(self, installation_id: str, deadline: Deadline) -> str:
        try:
            return self._tokens.access_token(installation_id, deadline=deadline)
        except TYPED as error:
            raise self._typed(installation_id, error) from None

    def _replacement(self, installation_id: str, rejected: str, deadline: Deadline) -> str:
        try:
            return self._tokens.replace_rejected(installation_id, rejected, deadline=deadline)
        except TYPED as error:
            raise self._typed(installation_id, error) from None

    def _typed(self, installation_id: str, error: Exception) -> Exception:
        if isinstance(error, InstallationNotFoundError):
            stored = self._installations.get(installation_id)
            if stored is not None:
                return BrokerError("uninstalled", 410, "the store uninstalled the app")
            return BrokerError("installation_not_found", 404, "no installation with this ID")
        if isinstance(error, ReauthorizationRequiredError):
            return BrokerError("needs_reauthorization", 409, "the merchant must authorise the app again")
        if isinstance(error, TokenRefreshBusyError):
            return BrokerError("refresh_in_progress", 503, "a refresh is in progress; try again", 1)
        if isinstance(error, BuyWithPrimeError) and error.transient:
            return BrokerError("upstream_unavailable", 503, "Buy with Prime unavailable", 5)
        return error
