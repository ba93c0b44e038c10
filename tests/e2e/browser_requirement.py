"""When the browser tests may be skipped: only on a developer's machine without Chromium. In CI
(CI=true) a missing Chromium is a failure, so the browser tests can never silently vanish."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "apt-get install -y chromium chromium-driver"


def browser_verdict(chromium: Path, environ: Mapping[str, str]) -> tuple[Literal["run", "skip", "fail"], str]:
    if chromium.exists():
        return "run", f"{chromium} found"
    reason = f"{chromium} is missing ({INSTALL_HINT})"
    if environ.get("CI", "").strip().lower() == "true":
        return "fail", f"CI needs the browser tests: {reason}"
    return "skip", reason
