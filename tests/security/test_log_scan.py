"""The session-wide secret scan (tests/security/log_scan.py) can fail: its search finds a secret
however it is embedded, and a pytest session whose test logs a sandbox-issued token exits 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from tests.app_driver import AppDriver
from tests.security.log_scan import REGISTRY, OutputBuffer, SecretRegistry

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "Atza|Jq8dK2-pLx0vN4_tRw7yB1mZc5hFg9sUe3oIa6QnVb-DkT2xMw8_rYj0LpHq4Gz"  # no repeats


def test_a_secret_is_found_raw_percent_encoded_or_inside_json_and_reported_redacted() -> None:
    registry = SecretRegistry()
    registry.add(TOKEN, "access token")
    registry.add("short", "ignored: test doubles this short are not secrets")
    for embedded in (
        f"Authorization: Bearer {TOKEN}",
        f"GET /x?token={quote(TOKEN, safe='')}&y=1",
        json.dumps({"message": "refreshed", "extra": {"t": TOKEN}}),
        f"prefix{TOKEN}suffix",
        f"truncated for the log: {TOKEN[:50]}",
    ):
        buffer = OutputBuffer()
        buffer.add(embedded, "tests/test_x.py::test_y")
        [leak] = buffer.scan(registry)
        assert leak.test == "tests/test_x.py::test_y" and leak.origin == "access token"
        assert TOKEN not in leak.context and "<SECRET>" in leak.context
    clean = OutputBuffer()
    clean.add("nothing secret here, not even short", "t")
    clean.add(f"a short preview: {TOKEN[:12]}...", "t")
    assert clean.scan(registry) == []


def test_the_session_registry_sees_what_the_suite_mints(app: AppDriver) -> None:
    assert app.install("amzn1.bwp.installation.registry").status == 200
    item = app.installation_item("amzn1.bwp.installation.registry")
    assert item is not None
    for value in (item["access_token"]["S"], item["refresh_token"]["S"]):
        assert [origin for _, origin, _ in REGISTRY.find(f"..{value}..")], "minted but not registered"


PLANTED = """
from sandbox.server import BuyWithPrimeSandbox
from shared.observability import logger


def test_logs(sandbox_token_logged={logged}):
    pair = BuyWithPrimeSandbox(client_id="c", client_secret="s").issue_tokens("amzn1.bwp.installation.plant")
    logger.info("token refreshed", extra={{"token": pair["access_token"] if sandbox_token_logged else "-"}})
"""


def _run_session(tmp_path: Path, logged: bool) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / f"test_planted_{logged}.py"
    test_file.write_text(PLANTED.format(logged=logged))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.security.log_scan"]
    command += ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), str(test_file)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_a_session_whose_test_logs_a_token_fails_and_names_the_test(tmp_path: Path) -> None:
    planted = _run_session(tmp_path, logged=True)
    assert planted.returncode == 1, planted.stdout + planted.stderr
    assert "1 passed" in planted.stdout  # the test itself passed: the scan failed the session
    assert "SECRET LEAK IN LOGS OR OUTPUT" in planted.stdout
    assert "::test_logs: access token (from " in planted.stdout
    control = _run_session(tmp_path, logged=False)
    assert control.returncode == 0, control.stdout + control.stderr
    assert "log secret scan: no leak" in control.stdout
