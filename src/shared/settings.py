"""Operator-facing configuration, read once from the environment and validated with pydantic."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.errors import ConfigurationError

# Field name -> environment variable; the template sets exactly these names.
ENVIRONMENT_VARIABLES = {
    "table_name": "TABLE_NAME",
    "client_credentials_secret_arn": "CLIENT_CREDENTIALS_SECRET_ARN",
    "bwp_authorize_url": "BWP_AUTHORIZE_URL",
    "bwp_token_url": "BWP_TOKEN_URL",
    "bwp_graphql_url": "BWP_GRAPHQL_URL",
    "bwp_verification_public_key": "BWP_VERIFICATION_PUBLIC_KEY",
    "public_base_url": "PUBLIC_BASE_URL",
    "bwp_api_version": "BWP_API_VERSION",
    "post_install_redirect_url": "POST_INSTALL_REDIRECT_URL",
    "partner_app_url": "PARTNER_APP_URL",
    "session_signing_secret_arn": "SESSION_SIGNING_SECRET_ARN",
    "app_name": "APP_NAME",
    "oauth_state_ttl_seconds": "OAUTH_STATE_TTL_SECONDS",
    "event_record_retention_days": "EVENT_RECORD_RETENTION_DAYS",
    "hydration_max_workers": "HYDRATION_MAX_WORKERS",
    "idle_refresh_hours": "IDLE_REFRESH_HOURS",
    "tenant_purge_days": "TENANT_PURGE_DAYS",
    "rehydrate_open_orders_hours": "REHYDRATE_OPEN_ORDERS_HOURS",
    "max_verification_token_age_seconds": "MAX_VERIFICATION_TOKEN_AGE_SECONDS",
    "require_verification_token_times": "REQUIRE_VERIFICATION_TOKEN_TIMES",
    "events_queue_url": "EVENTS_QUEUE_URL",
    "app_event_bus_name": "APP_EVENT_BUS_NAME",  # the outbox publisher's (outbox/handler.py reads it)
}

DEFAULT_APP_NAME = "Buy with Prime app"
DEFAULT_AUTHORIZE_URL = "https://console.buywithprime.amazon.com/marketplace/authorize"
DEFAULT_TOKEN_URL = "https://api.buywithprime.amazon.com/token"  # noqa: S105 - a URL, not a secret
DEFAULT_GRAPHQL_URL = "https://api.buywithprime.amazon.com/graphql"
PUBLISHED_VERIFICATION_KEY = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9NrnQefbdiD4Tk65eY2r/fXtf4VV\n"
    "PIBdR7qP73NhRBdNhUNfERayW67OP+ufvhpgdWUcbxXQkos8KkwL8yRMzQ==\n"
    "-----END PUBLIC KEY-----\n"
)
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _check_url(value: str, *, origin_only: bool = False) -> str:
    """An https URL; plain http is accepted for loopback only (the local sandbox)."""
    parts = urlsplit(value)
    if not parts.hostname or parts.scheme not in {"https", "http"}:
        raise ValueError("must be an absolute https URL")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ValueError("must use https (http is accepted for loopback addresses only)")
    if origin_only and (parts.path not in {"", "/"} or parts.query or parts.fragment):
        raise ValueError("must be scheme and host only, e.g. https://app.example.com")
    return value.rstrip("/") if origin_only else value


def normalise_public_key(value: str) -> str:
    """Accept a PEM with real or escaped newlines, or just its base64 body; return a PEM."""
    text = value.replace("\\n", "\n").strip()
    if "-----BEGIN PUBLIC KEY-----" not in text:
        body = "".join(text.split())
        if not body or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=" for c in body):
            raise ValueError("must be a PEM public key or its base64 body")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        text = "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----"
    return text + "\n"


class Settings(BaseModel):
    """Validated configuration; build it with `load_settings`, not directly from os.environ."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table_name: str = Field(min_length=3, max_length=255, pattern=r"^[A-Za-z0-9_.-]+$")
    client_credentials_secret_arn: str = Field(pattern=r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
    bwp_authorize_url: str = DEFAULT_AUTHORIZE_URL
    bwp_token_url: str = DEFAULT_TOKEN_URL
    bwp_graphql_url: str = DEFAULT_GRAPHQL_URL
    bwp_verification_public_key: str = PUBLISHED_VERIFICATION_KEY
    public_base_url: str | None = None
    bwp_api_version: str | None = Field(default=None, pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    post_install_redirect_url: str | None = None
    partner_app_url: str | None = None  # Settings hands off there (oauth/handoff.py)
    session_signing_secret_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$"
    )
    app_name: str = Field(default=DEFAULT_APP_NAME, min_length=1, max_length=60)
    oauth_state_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    event_record_retention_days: int = Field(default=90, ge=1, le=3650)
    hydration_max_workers: int = Field(default=10, ge=1, le=32)
    idle_refresh_hours: int = Field(default=24, ge=1, le=720)
    tenant_purge_days: int = Field(default=30, ge=1, le=3650)  # after an uninstall (sweep/purge.py)
    # 0: off. Else the events function keeps open-order markers and the sweep re-hydrates open
    # orders whose snapshot is older than this (sweep/rehydrate.py)
    rehydrate_open_orders_hours: int = Field(default=0, ge=0, le=8760)
    max_verification_token_age_seconds: int = Field(default=300, ge=0, le=86400)  # 0: no limit
    require_verification_token_times: bool = False
    events_queue_url: str | None = None  # records sent back get a growing visibility timeout on it
    app_event_bus_name: str | None = None

    @field_validator(
        "bwp_authorize_url", "bwp_token_url", "bwp_graphql_url", "post_install_redirect_url", "partner_app_url"
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("public_base_url")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value, origin_only=True)

    @field_validator("bwp_verification_public_key")
    @classmethod
    def _key(cls, value: str) -> str:
        return normalise_public_key(value)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration; raise ConfigurationError naming the bad variable."""
    env = os.environ if environ is None else environ
    raw = {field: env[name] for field, name in ENVIRONMENT_VARIABLES.items() if env.get(name, "").strip()}
    missing = [ENVIRONMENT_VARIABLES[f] for f in ("table_name", "client_credentials_secret_arn") if f not in raw]
    if missing:
        raise ConfigurationError(f"Invalid configuration: {', '.join(missing)} must be set")
    try:
        return Settings(**raw)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else "?"
            problems.append(f"{ENVIRONMENT_VARIABLES.get(field, field)}: {item['msg']}")
        raise ConfigurationError("Invalid configuration: " + "; ".join(problems)) from None
