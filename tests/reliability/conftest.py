"""Reliability tests: load, crashes, DynamoDB faults, install failures, the CI workflow.

Shared here: a moto server on loopback (the local stack's, one DynamoDB request at a time) for the
tests that inject faults at the HTTP layer, where botocore's own retry logic sees them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from devtools.local_stack.moto_server import SerialisedMotoServer


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (fresh state), its endpoint URL."""
    server = SerialisedMotoServer(port=0)
    server.start()
    try:
        requests.post(f"{server.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        yield server.endpoint_url
    finally:
        server.stop()
