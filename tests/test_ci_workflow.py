"""Supply-chain invariants of the partners' CI workflow (.github/workflows/ci.yml)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from devtools.template import PROJECT_ROOT

WORKFLOW: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / ".github" / "workflows" / "ci.yml").read_text())


def test_every_action_is_pinned_by_commit_sha() -> None:
    uses = [step["uses"] for job in WORKFLOW["jobs"].values() for step in job["steps"] if "uses" in step]
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", use) for use in uses), uses


def test_the_deploy_job_installs_everything_before_it_assumes_the_role() -> None:
    steps = WORKFLOW["jobs"]["deploy"]["steps"]
    assume = next(i for i, step in enumerate(steps) if "configure-aws-credentials" in step.get("uses", ""))
    installs = [i for i, step in enumerate(steps) if re.search(r"\bmake (build|install)\b", step.get("run", ""))]
    assert installs and max(installs) < assume
    later = " ".join(step.get("run", "") for step in steps[assume:])
    assert "make deploy" in later and "BUILT=1" in later  # deploys what was built, installs nothing
    assert "pip install" not in later and "make build" not in later and "make install" not in later
