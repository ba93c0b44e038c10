"""The OAuth function's collaborators: the shared ones plus OAuth states and the verifier."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from shared.wiring import SharedDependencies

if TYPE_CHECKING:
    from oauth.verification import RequestVerifier
    from shared.store.oauth_states import OAuthStateStore


class Dependencies(SharedDependencies):
    @cached_property
    def states(self) -> OAuthStateStore:
        from shared.store.oauth_states import OAuthStateStore

        return OAuthStateStore(self.dynamodb, self.settings.table_name)

    @cached_property
    def verifier(self) -> RequestVerifier:
        from oauth.verification import RequestVerifier

        return RequestVerifier(self.settings.bwp_verification_public_key)
