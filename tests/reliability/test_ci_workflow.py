""".github/workflows/ci.yml: it parses, runs what .ci/run runs (same make target, same CI=true) on an
ubuntu runner with Python 3.13, Chromium and a pip cache, and deploys only by hand, through OIDC,
with no secret in the file."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.template import PROJECT_ROOT

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "ci.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    document = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert isinstance(triggers, dict)
    return triggers


def _runs(job: dict[str, Any]) -> list[str]:
    return [str(step["run"]).strip() for step in job["steps"] if "run" in step]


def _uses(job: dict[str, Any], action: str) -> dict[str, Any]:
    (step,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith(action + "@")]
    return step


def ci_run_command(path: Path = PROJECT_ROOT / ".ci" / "run") -> tuple[str, dict[str, str]]:
    """The make command .ci/run runs, and the variables it exports."""
    exported: dict[str, str] = {}
    command = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            exported[name] = value.strip("\"'")
        elif line.startswith("make "):
            command = line
    assert command, ".ci/run runs no make target"
    return command, exported


def make_prerequisites(target: str, path: Path = PROJECT_ROOT / "Makefile") -> list[str]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{target}:"):
            return line.partition(":")[2].split("##")[0].split()
    raise AssertionError(f"the Makefile has no target {target}")


def test_the_workflow_parses_and_runs_on_pushes_pull_requests_and_by_hand(workflow: dict[str, Any]) -> None:
    triggers = _triggers(workflow)
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers)
    assert workflow["permissions"] == {"contents": "read"}
    assert set(workflow["jobs"]) == {"test", "deploy"}
    assert all(isinstance(job.get("timeout-minutes"), int) for job in workflow["jobs"].values())


def test_the_test_job_runs_the_same_make_target_as_ci_run(workflow: dict[str, Any]) -> None:
    command, exported = ci_run_command()
    assert command == "make test"
    job = workflow["jobs"]["test"]
    assert command in _runs(job)
    assert job["env"] == exported == {"CI": "true"}
    assert make_prerequisites("test") == ["lint", "typecheck", "pytest", "validate", "build"]


def test_the_test_job_has_ubuntu_python_313_a_pip_cache_and_chromium(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["test"]
    assert str(job["runs-on"]).startswith("ubuntu-")
    python = _uses(job, "actions/setup-python")["with"]
    assert str(python["python-version"]) == "3.13" and python["cache"] == "pip"
    for pattern in str(python["cache-dependency-path"]).split():
        assert list(PROJECT_ROOT.glob(pattern)), f"the pip cache key names nothing: {pattern}"
    assert _uses(job, "actions/checkout")
    (chromium,) = [run for run in _runs(job) if "chromium" in run]
    assert "apt-get install" in chromium and "/usr/bin/chromium" in chromium
    steps = _runs(job)
    assert steps.index(chromium) < steps.index("make test")


def test_deploy_is_manual_needs_the_tests_and_assumes_a_role_through_oidc(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["deploy"]
    assert job["if"] == "github.event_name == 'workflow_dispatch'"
    assert job["needs"] == "test"
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    credentials = _uses(job, "aws-actions/configure-aws-credentials")["with"]
    assert credentials["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert "aws-access-key-id" not in credentials and "aws-secret-access-key" not in credentials
    assert 'make deploy ENV="$DEPLOY_ENV" BUILT=1' in _runs(job)
    assert job["env"]["DEPLOY_ENV"] == "${{ inputs.environment }}"  # never spliced into the script


def test_the_deploy_environments_are_samconfig_environments(workflow: dict[str, Any]) -> None:
    offered = _triggers(workflow)["workflow_dispatch"]["inputs"]["environment"]["options"]
    samconfig = tomllib.loads((PROJECT_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert set(offered) <= {name for name in samconfig if name != "version"}

    # `make deploy` builds first; with BUILT=1 (CI, after its build step) it builds nothing
    def dry_run(*variables: str) -> str:
        return subprocess.run(
            ["make", "-n", "deploy", "ENV=dev", *variables],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert "sam build" in dry_run() and "sam build" not in dry_run("BUILT=1")


def test_the_preflight_refuses_a_samconfig_that_would_make_deploy_ask_questions(
    workflow: dict[str, Any], tmp_path: Path
) -> None:
    """The deploy job's first step, run on today's samconfig.toml (no region, confirm_changeset =
    true): it must stop with a message instead of letting `sam deploy --guided` wait forever."""
    import os
    import subprocess
    import sys

    job = workflow["jobs"]["deploy"]
    (preflight,) = [run for run in _runs(job) if "tomllib" in run]
    script = preflight.split("<<'PY'\n", 1)[1].rsplit("\nPY", 1)[0]
    (tmp_path / "samconfig.toml").write_text((PROJECT_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    refused = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env={**os.environ, "DEPLOY_ENV": "dev"}, capture_output=True,
        text=True, timeout=30, check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "::error::" in refused.stdout and "region" in refused.stdout
    (tmp_path / "samconfig.toml").write_text(
        '[dev.deploy.parameters]\nregion = "us-east-1"\nconfirm_changeset = false\n', encoding="utf-8"
    )
    ready = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env={**os.environ, "DEPLOY_ENV": "dev"}, capture_output=True,
        text=True, timeout=30, check=False,
    )  # fmt: skip
    assert ready.returncode == 0, ready.stdout + ready.stderr


def test_no_secret_or_key_is_in_the_workflow(workflow: dict[str, Any]) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "secrets." not in text
    assert not re.search(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", text)
    assert "aws_secret_access_key" not in text.lower() and "client_secret" not in text
    for job in workflow["jobs"].values():
        for run in _runs(job):  # expressions reach scripts only through env: no injection
            assert "${{" not in run, run


def test_every_action_is_pinned_by_commit_sha(workflow: dict[str, Any]) -> None:
    uses = [step["uses"] for job in workflow["jobs"].values() for step in job["steps"] if "uses" in step]
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", use) for use in uses), uses


def test_the_deploy_job_installs_everything_before_it_assumes_the_role(workflow: dict[str, Any]) -> None:
    steps = workflow["jobs"]["deploy"]["steps"]
    assume = next(i for i, step in enumerate(steps) if "configure-aws-credentials" in step.get("uses", ""))
    installs = [i for i, step in enumerate(steps) if re.search(r"\bmake (build|install)\b", step.get("run", ""))]
    assert installs and max(installs) < assume
    later = " ".join(step.get("run", "") for step in steps[assume:])
    assert "make deploy" in later and "BUILT=1" in later  # deploys what was built, installs nothing
    assert "pip install" not in later and "make build" not in later and "make install" not in later
