"""`make audit`: pip-audit over the Lambda locks (src/requirements*.lock), with an honest verdict.

Exit 0 only when every locked distribution was checked and none has a known vulnerability; 1 when
one has (each listed with its fix versions); 2 when anything could not be checked (the vulnerability
service unreachable, or a version it does not know): then nothing is claimed about those.
pip-audit itself exits 0 when it skips a distribution, which would read as "no vulnerabilities".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOCKS = [ROOT / "src" / "requirements.lock", ROOT / "src" / "requirements-oauth.lock"]


def audit(pip_audit: str, lock: Path) -> dict[str, Any] | str:
    """pip-audit's JSON report for one lock, or why there is none."""
    command = [pip_audit, "--require-hashes", "--disable-pip", "-r", str(lock), "--progress-spinner", "off"]
    done = subprocess.run(  # noqa: S603 - pip-audit of .venv-audit, our arguments
        [*command, "-f", "json"], capture_output=True, text=True, timeout=600, check=False
    )
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"pip-audit failed (exit {done.returncode}): {last[:300]}"
    return report


def verdict(reports: dict[str, dict[str, Any] | str]) -> tuple[int, list[str]]:
    """(exit status, lines to print) for the reports of every lock."""
    lines, vulnerable, unchecked = [], 0, 0
    for lock, report in reports.items():
        if isinstance(report, str):
            unchecked += 1
            lines.append(f"{lock}: not audited: {report}")
            continue
        for dependency in report.get("dependencies", []):
            name = f"{dependency['name']} {dependency.get('version', '')}".strip()
            if dependency.get("skip_reason"):
                unchecked += 1
                lines.append(f"{lock}: {name} not audited: {dependency['skip_reason']}")
            for vulnerability in dependency.get("vulns", []):
                vulnerable += 1
                fixes = ", ".join(vulnerability.get("fix_versions") or []) or "no fix yet"
                lines.append(f"{lock}: {name} VULNERABLE {vulnerability['id']} (fixed in: {fixes})")
    if vulnerable:
        lines.append(f"audit: {vulnerable} known vulnerabilities: update src/requirements*.txt, then make lock")
        return 1, lines
    if unchecked:
        lines.append(
            f"audit: {unchecked} distribution(s) or lock(s) could NOT be checked (is the vulnerability service "
            "reachable from here, and does it know these versions?): no claim is made about them"
        )
        return 2, lines
    lines.append("audit: every locked distribution checked, no known vulnerability")
    return 0, lines


def main(argv: list[str]) -> int:
    pip_audit = argv[1] if len(argv) > 1 else "pip-audit"
    status, lines = verdict({str(lock.relative_to(ROOT)): audit(pip_audit, lock) for lock in LOCKS})
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
