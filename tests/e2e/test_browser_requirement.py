"""The browser tests skip only outside CI, and only for a missing Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.browser_requirement import browser_verdict

pytestmark = pytest.mark.e2e


def test_a_missing_chromium_skips_on_a_developer_machine(tmp_path: Path) -> None:
    verdict, reason = browser_verdict(tmp_path / "chromium", {})
    assert verdict == "skip"
    assert "chromium is missing" in reason and "apt-get install -y chromium" in reason


@pytest.mark.parametrize("value", ["true", "TRUE", " true "])
def test_a_missing_chromium_fails_in_ci(tmp_path: Path, value: str) -> None:
    verdict, reason = browser_verdict(tmp_path / "chromium", {"CI": value})
    assert verdict == "fail"
    assert reason.startswith("CI needs the browser tests")


def test_an_existing_chromium_runs_everywhere(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    chromium.touch()
    assert browser_verdict(chromium, {"CI": "true"})[0] == "run"
    assert browser_verdict(chromium, {})[0] == "run"
