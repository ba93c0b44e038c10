"""`make validate`: cfn-guard with the AWS Control Tower rules over the translated template.

    python scripts/cfn_guard.py CFN_GUARD RULES_DIR SUPPRESSIONS TEMPLATE

cfn-guard reports every (rule, resource) that is not compliant. Each one must be listed in the
suppressions file (lint/cfn-guard-suppressions.yaml) with its reason; exit 1 on any other finding,
and on a suppression that no longer matches a finding (so the file never outlives the template).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

RESOURCE_PATH = re.compile(r"^/Resources/([^/]+)")
CONTROL_ID = re.compile(r"\[(CT\.[A-Z0-9]+\.PR\.\d+)\]")


def _resources(node: Any, found: set[str]) -> None:
    """Logical IDs of the resources a failed check looked at ("to" is what it compared with)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "path" and isinstance(value, str) and (match := RESOURCE_PATH.match(value)):
                found.add(match.group(1))
            elif key != "to":
                _resources(value, found)
    elif isinstance(node, list):
        for value in node:
            _resources(value, found)


def findings(report: list[dict[str, Any]]) -> dict[str, tuple[str, set[str]]]:
    """Rule name -> (control ID, resources) for every rule that failed."""
    failed: dict[str, tuple[str, set[str]]] = {}
    for data_file in report:
        for entry in data_file.get("not_compliant", []):
            rule = entry["Rule"]
            control = CONTROL_ID.search(json.dumps(rule))
            resources = failed.setdefault(rule["name"], (control.group(1) if control else "", set()))[1]
            _resources(rule, resources)
    return failed


def load_suppressions(path: Path) -> dict[str, set[str]]:
    """Rule name -> suppressed resources; every entry needs a rule, its resources and a reason."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    suppressed: dict[str, set[str]] = {}
    for entry in document.get("suppressions", []):
        if not (entry.get("rule") and entry.get("resources") and str(entry.get("reason", "")).strip()):
            raise SystemExit(f"{path}: every suppression needs rule, resources and reason: {entry}")
        suppressed.setdefault(entry["rule"], set()).update(entry["resources"])
    return suppressed


def main() -> int:
    guard, rules, suppressions_file, template = sys.argv[1:]
    rule_files = sorted(Path(rules).rglob("*.guard"))
    if not rule_files:
        print(f"cfn-guard: no rules under {rules}", file=sys.stderr)
        return 1
    done = subprocess.run(  # noqa: S603 - the pinned cfn-guard binary, our arguments
        [guard, "validate", "--rules", rules, "--data", template, "--structured", "-S", "none", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # 0: all compliant, 19: some rule failed; anything else is cfn-guard failing to evaluate.
    if done.returncode not in (0, 19):
        print(f"cfn-guard failed (exit {done.returncode}): {done.stderr.strip()[:2000]}", file=sys.stderr)
        return 1
    failed = findings(json.loads(done.stdout))
    suppressed = load_suppressions(Path(suppressions_file))
    new, stale = [], []
    for rule, (control, resources) in sorted(failed.items()):
        new += [f"{control} {rule}: {resource}" for resource in sorted(resources - suppressed.get(rule, set()))]
    for rule, resources in sorted(suppressed.items()):
        stale += [f"{rule}: {resource}" for resource in sorted(resources - failed.get(rule, ("", set()))[1])]
    for line in new:
        print(f"cfn-guard: NOT COMPLIANT {line} (fix it, or justify it in {suppressions_file})")
    for line in stale:
        print(f"cfn-guard: stale suppression {line} in {suppressions_file}: it matches no finding, remove it")
    count = sum(len(resources) for _, resources in failed.values())
    print(
        f"cfn-guard: {len(rule_files)} Control Tower rule files on {template}: {count} findings, "
        f"{count - len(new)} justified in {suppressions_file}, {len(new)} not, {len(stale)} stale suppressions"
    )
    return 1 if new or stale else 0


if __name__ == "__main__":
    sys.exit(main())
