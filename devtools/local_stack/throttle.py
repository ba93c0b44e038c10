"""API Gateway's route throttling on the local front: a token bucket per route, sized by the
template's HttpApi `DefaultRouteSettings` and `RouteSettings` (burst = the bucket, rate = its
refill per second), answering 429 {"message":"Too Many Requests"} as API Gateway does when empty.

AWS applies the limits per stage across its fleet (approximately, and on top of the account's
limits); here one process counts exactly. That is enough to show what the design promises: a
flood of one route spends that route's bucket, not the others'."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

TOO_MANY_REQUESTS_BODY = b'{"message":"Too Many Requests"}'


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = float(rate), int(burst)
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()
        self.refused = 0

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            self.refused += 1
            return False


def route_buckets(api_properties: Mapping[str, Any], route_keys: list[str]) -> dict[str, TokenBucket]:
    """One bucket per route key, from the HttpApi's resolved Properties (routes without a limit
    anywhere get none)."""
    default = api_properties.get("DefaultRouteSettings") or {}
    per_route = api_properties.get("RouteSettings") or {}
    buckets = {}
    for key in route_keys:
        settings = {**default, **(per_route.get(key) or {})}
        if "ThrottlingRateLimit" in settings and "ThrottlingBurstLimit" in settings:
            buckets[key] = TokenBucket(float(settings["ThrottlingRateLimit"]), int(settings["ThrottlingBurstLimit"]))
    return buckets
