"""The outbox publisher's collaborators: the app event bus's name and an EventBridge client."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


class Dependencies:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.bus_name = environ.get("APP_EVENT_BUS_NAME", "")
        self._events: Any = None

    @property
    def events(self) -> Any:
        if self._events is None:
            import boto3

            from shared.wiring import aws_client_config

            self._events = boto3.client("events", config=aws_client_config())
        return self._events
