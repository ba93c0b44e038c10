"""The OAuth function's collaborators: the shared ones plus OAuth states, uninstall tokens seen and
the verifier."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from shared.wiring import SharedDependencies

if TYPE_CHECKING:
    from oauth.handoff import SigningSecret
    from oauth.verification import RequestVerifier
    from shared.store.oauth_states import OAuthStateStore
    from shared.store.uninstall_tokens import UninstallTokenStore


class Dependencies(SharedDependencies):
    @cached_property
    def states(self) -> OAuthStateStore:
        from shared.store.oauth_states import OAuthStateStore

        return OAuthStateStore(self.dynamodb, self.settings.table_name)

    @cached_property
    def uninstall_tokens(self) -> UninstallTokenStore:
        from shared.store.uninstall_tokens import UninstallTokenStore

        return UninstallTokenStore(self.dynamodb, self.settings.table_name)

    @cached_property
    def verifier(self) -> RequestVerifier:
        from oauth.verification import RequestVerifier

        settings = self.settings
        return RequestVerifier(
            settings.bwp_verification_public_key,
            max_age_seconds=settings.max_verification_token_age_seconds,
            require_times=settings.require_verification_token_times,
        )

    @cached_property
    def signing_secret(self) -> SigningSecret:
        from oauth.handoff import SigningSecret
        from shared.errors import ConfigurationError

        arn = self.settings.session_signing_secret_arn
        if not arn:
            raise ConfigurationError("SESSION_SIGNING_SECRET_ARN: required when PARTNER_APP_URL is set")
        return SigningSecret(self.secretsmanager, arn)
