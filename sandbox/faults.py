"""Fault injection for the sandbox: queued failures, GraphQL throttling and added latency."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ENDPOINTS", "Fault", "Faults"]

ENDPOINTS = ("authorize", "token", "graphql")
FAULT_ENDPOINTS = ("token", "graphql")


@dataclass
class Fault:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    remaining: int = 1


def _default_body(endpoint: str, status: int) -> dict[str, Any]:
    if endpoint == "token":
        error = "slow_down" if status == 429 else "temporarily_unavailable"
        return {"error": error, "error_description": "injected by the sandbox"}
    kind = "ThrottlingError" if status == 429 else "InternalServerError"
    code = "RATE_EXCEEDED" if status == 429 else "INTERNAL_FAILURE"
    return {
        "errors": [
            {
                "message": f"injected HTTP {status}",
                "path": None,
                "extensions": {"classification": {"type": kind, "errorType": kind, "errorCode": code}},
            }
        ]
    }


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[str, deque[Fault]] = {name: deque() for name in FAULT_ENDPOINTS}
        self._throttles = 0
        self._throttled_installations: set[str] = set()
        self._latency: dict[str, float] = {name: 0.0 for name in ENDPOINTS}
        self._holds: deque[float] = deque()

    def fail_next(
        self,
        endpoint: str,
        status: int,
        times: int = 1,
        body: bytes | str | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if endpoint not in FAULT_ENDPOINTS:
            raise ValueError(f"endpoint must be one of {FAULT_ENDPOINTS}")
        if times < 1 or not 100 <= status <= 599:
            raise ValueError("times must be >= 1 and status an HTTP status code")
        content_type = "application/json"
        if body is None:
            body = _default_body(endpoint, status)
        if isinstance(body, dict):
            raw = json.dumps(body).encode()
        elif isinstance(body, str):
            raw, content_type = body.encode(), "text/plain; charset=utf-8"
        else:
            raw, content_type = body, "application/octet-stream"
        with self._lock:
            self._queued[endpoint].append(Fault(status, raw, content_type, headers or {}, times))

    def take(self, endpoint: str) -> Fault | None:
        """The fault to serve for this request, if one is queued (consumes one use)."""
        with self._lock:
            queue = self._queued.get(endpoint)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            return fault

    def throttle_next(self, times: int = 1) -> None:
        with self._lock:
            self._throttles += times

    def hold_next(self, seconds: float) -> None:
        with self._lock:
            self._holds.append(seconds)

    def take_hold(self) -> float:
        with self._lock:
            return self._holds.popleft() if self._holds else 0.0

    def throttle_installation(self, installation_id: str, throttled: bool = True) -> None:
        with self._lock:
            (self._throttled_installations.add if throttled else self._throttled_installations.discard)(installation_id)

    def take_throttle(self, installation_id: str = "") -> bool:
        with self._lock:
            if installation_id in self._throttled_installations:
                return True
            if self._throttles <= 0:
                return False
            self._throttles -= 1
            return True

    def set_latency(self, endpoint: str, seconds: float) -> None:
        if endpoint not in ENDPOINTS or seconds < 0:
            raise ValueError(f"endpoint must be one of {ENDPOINTS}; seconds >= 0")
        with self._lock:
            self._latency[endpoint] = seconds

    def latency(self, endpoint: str) -> float:
        with self._lock:
            return self._latency.get(endpoint, 0.0)

    def clear(self) -> None:
        with self._lock:
            for queue in self._queued.values():
                queue.clear()
            self._throttles = 0
            self._throttled_installations.clear()
            self._latency = {name: 0.0 for name in ENDPOINTS}
            self._holds.clear()
