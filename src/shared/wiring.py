"""Builds the collaborators both functions share, lazily (each route or batch imports and creates
only what it uses: cold start) and once per container (warm invocations reuse them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.budget import TimeBudget
    from shared.buy_with_prime import BuyWithPrimeClient
    from shared.credentials import ClientCredentialsProvider
    from shared.settings import Settings
    from shared.store.installations import InstallationStore
    from shared.tokens import TokenService


class Container[T]:
    """A Lambda container's collaborators: built on first use, reused while warm, replaceable
    by tests and the local stack."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._current: T | None = None

    def get(self) -> T:
        if self._current is None:
            self._current = self._factory()
        return self._current

    def reset(self, replacement: T | None = None) -> None:
        self._current = replacement


class SharedDependencies:
    """Tests replace any attribute (e.g. `deps.buy_with_prime = ...`) before its first use."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    @cached_property
    def settings(self) -> Settings:
        from shared.settings import load_settings

        return load_settings(self._environ)

    @cached_property
    def budget(self) -> TimeBudget:
        """Every timeout, retry, lease and wait (shared.budget); tests may scale it down."""
        from shared.budget import DEFAULT_BUDGET

        return DEFAULT_BUDGET

    @cached_property
    def dynamodb(self) -> Any:
        import boto3

        return boto3.client("dynamodb", config=aws_client_config())

    @cached_property
    def secretsmanager(self) -> Any:
        import boto3

        return boto3.client("secretsmanager", config=aws_client_config())

    @cached_property
    def installations(self) -> InstallationStore:
        from shared.store.installations import InstallationStore

        return InstallationStore(self.dynamodb, self.settings.table_name)

    @cached_property
    def credentials(self) -> ClientCredentialsProvider:
        from shared.credentials import ClientCredentialsProvider

        return ClientCredentialsProvider(self.secretsmanager, self.settings.client_credentials_secret_arn)

    @cached_property
    def buy_with_prime(self) -> BuyWithPrimeClient:
        import requests
        from requests.adapters import HTTPAdapter

        from shared.buy_with_prime import BuyWithPrimeClient

        settings = self.settings
        session = requests.Session()
        # one pooled connection per hydration worker, so concurrent calls reuse connections
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, settings.hydration_max_workers))
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return BuyWithPrimeClient(
            settings.bwp_token_url,
            settings.bwp_graphql_url,
            session=session,
            api_version=settings.bwp_api_version,
            token_budget=self.budget.token,
            graphql_budget=self.budget.graphql,
        )

    @cached_property
    def tokens(self) -> TokenService:
        from shared.tokens import TokenCache, TokenService

        return TokenService(self.installations, self.buy_with_prime, self.credentials, TokenCache(), budget=self.budget)


def aws_client_config() -> Any:
    """Retries and timeouts stated, not left to whichever boto3 the Lambda runtime bundles: standard
    mode (throttling, 5xx and transient errors, with backoff), 4 attempts, short timeouts."""
    from botocore.config import Config

    return Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=2, read_timeout=5)
