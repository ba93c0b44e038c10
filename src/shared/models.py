"""Domain records shared by both functions. Token values are SecretStr so that no repr, log line
or exception message can show them by accident."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr

DEFAULT_ACCESS_TOKEN_LIFETIME = 900  # documented 15 minutes; used when expires_in is absent


class TokenSet(BaseModel):
    """What the token endpoint returned."""

    model_config = ConfigDict(frozen=True)

    access_token: SecretStr
    refresh_token: SecretStr
    expires_in: int = Field(default=DEFAULT_ACCESS_TOKEN_LIFETIME, gt=0)
    token_type: str | None = None


class ClientCredentials(BaseModel):
    """The app's OAuth client, read from Secrets Manager."""

    model_config = ConfigDict(frozen=True)

    client_id: str = Field(min_length=1)
    client_secret: SecretStr


class InstallationStatus(StrEnum):
    ACTIVE = "active"
    NEEDS_REAUTHORIZATION = "needs_reauthorization"
    UNINSTALLED = "uninstalled"


@dataclass(frozen=True, repr=False)
class Installation:
    """One merchant's installation of the app, as stored (one item per installation)."""

    installation_id: str
    status: InstallationStatus
    installed_at: int
    updated_at: int
    access_token: str | None = None
    refresh_token: str | None = None
    access_token_expires_at: int = 0
    lease_owner: str | None = None
    lease_expires_at: int = 0
    uninstalled_at: int | None = None
    reauthorization_reason: str | None = None
    installed_at_ms: int = 0
    tokens_refreshed_at: int = 0

    def __repr__(self) -> str:  # never show tokens
        return f"Installation(installation_id={self.installation_id!r}, status={self.status.value!r})"

    @property
    def generation(self) -> int:
        """Tells installations of the same ID apart: a re-install is a new generation."""
        return self.installed_at_ms or self.installed_at * 1000

    def access_token_valid(self, now: float, margin: int) -> bool:
        return bool(self.access_token) and self.access_token_expires_at - margin > now


@dataclass(frozen=True, repr=False)
class PendingAuthorization:
    """A launched OAuth flow waiting for its Install redirect."""

    state: str
    code_verifier: str
    browser_binding: str  # SHA-256 of the cookie value set on the browser at launch
    created_at: int
    expires_at: int

    def __repr__(self) -> str:  # never show the verifier
        return f"PendingAuthorization(expires_at={self.expires_at})"
