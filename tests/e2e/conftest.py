"""End-to-end tests: the whole system on this machine (devtools.local_stack), a real browser."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "pipeline.yaml"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: runs the local stack (moto server, sandbox, HTTP front) on loopback")
    config.addinivalue_line(
        "markers", "container: the real sam local invoke in a private dockerd (root, network namespace)"
    )
    config.addinivalue_line("markers", "browser: drives headless Chromium (needs /usr/bin/chromium)")


@pytest.fixture(autouse=True)
def _environment() -> None:
    """Replaces tests/conftest.py's per-test environment reset: here the local stack owns the
    process environment (AWS_ENDPOINT_URL -> moto, local credentials) and restores it on stop;
    clearing AWS_ENDPOINT_URL before each test would send the handlers to real AWS."""
