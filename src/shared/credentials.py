"""The app's OAuth client credentials, read from Secrets Manager and cached for a few minutes
so that a rotated secret is picked up without a redeploy."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from shared.errors import ConfigurationError
from shared.models import ClientCredentials

PLACEHOLDER_CLIENT_ID = "REPLACE_ME"


class ClientCredentialsProvider:
    """`client` is a boto3 Secrets Manager client; the provider never builds its own."""

    def __init__(
        self, client: Any, secret_arn: str, *, ttl_seconds: int = 300, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._secret_arn = secret_arn
        self._ttl = ttl_seconds
        self._clock = clock
        self._cached: tuple[ClientCredentials, float] | None = None
        self._lock = threading.Lock()

    def get(self) -> ClientCredentials:
        with self._lock:
            if self._cached and self._cached[1] > self._clock():
                return self._cached[0]
            credentials = self._read()
            self._cached = (credentials, self._clock() + self._ttl)
            return credentials

    def forget(self) -> None:
        """Read the secret again on next use (e.g. after Buy with Prime refused the client)."""
        with self._lock:
            self._cached = None

    def _read(self) -> ClientCredentials:
        secret = self._client.get_secret_value(SecretId=self._secret_arn)
        problem = 'it must hold JSON {"client_id": ..., "client_secret": ...}'
        try:
            value = json.loads(secret.get("SecretString") or "")
            credentials = ClientCredentials.model_validate(value)
        except ValueError:
            raise ConfigurationError(f"CLIENT_CREDENTIALS_SECRET_ARN: the secret is malformed; {problem}") from None
        if credentials.client_id == PLACEHOLDER_CLIENT_ID:
            raise ConfigurationError(
                "CLIENT_CREDENTIALS_SECRET_ARN: the secret still holds the placeholder; "
                f"put the app's real client credentials into it ({problem})"
            )
        return credentials
