"""A DynamoDB client whose requests run one at a time.

moto applies a conditional write in several unguarded steps, so two threads can both pass the
same condition; real DynamoDB applies each request atomically. Serialising the calls gives moto
DynamoDB's per-request atomicity, which is all the concurrency tests rely on (in-process moto
also raises `RuntimeError: dictionary changed size` under concurrent writes without it)."""

from __future__ import annotations

import threading
from typing import Any

import boto3


class AtomicDynamoDB:
    _lock = threading.Lock()

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or boto3.client("dynamodb")
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def atomic(**kwargs: Any) -> Any:
            with self._lock:
                self.calls.append(name)
                return method(**kwargs)

        return atomic
