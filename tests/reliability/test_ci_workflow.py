""".ci/run and .github/workflows/ci.yml against the files they depend on: the README's test command,
the Makefile's targets, the Lambdas' Python, samconfig.toml; and the deploy job's security."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.template import PROJECT_ROOT

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "ci.yml"
CI_RUN = PROJECT_ROOT / ".ci" / "run"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    document = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _runs(job: dict[str, Any]) -> list[str]:
    return [str(step["run"]).strip() for step in job["steps"] if "run" in step]


def _uses(job: dict[str, Any], action: str) -> dict[str, Any]:
    (step,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith(action + "@")]
    return dict(step)


def ci_run_command() -> tuple[str, dict[str, str]]:
    """The make command .ci/run runs, and the variables it exports."""
    exported: dict[str, str] = {}
    command = ""
    for raw in CI_RUN.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            exported[name] = value.strip("\"'")
        elif line.startswith("make "):
            command = line
    assert command, ".ci/run runs no make target"
    return command, exported


def test_ci_runs_the_readmes_test_command_and_the_workflow_runs_it_the_same_way(workflow: dict[str, Any]) -> None:
    command, exported = ci_run_command()
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", (PROJECT_ROOT / "README.md").read_text(encoding="utf-8"), re.M | re.S)
    readme = {line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()}
    assert command in readme, f".ci/run runs {command!r}, which the README does not show"
    job = workflow["jobs"]["test"]
    assert command in _runs(job)
    assert exported.items() <= job.get("env", {}).items()


@pytest.mark.parametrize("status", [0, 2, 5])
def test_ci_run_exits_with_the_test_commands_status(tmp_path: Path, status: int) -> None:
    """A failing (or, pytest's 5, an empty) test run fails CI: nothing in .ci/run swallows it."""
    fake = tmp_path / "make"
    fake.write_text(f'#!/bin/sh\n[ "$CI" = true ] || exit 99\nexit {status}\n', encoding="utf-8")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([str(CI_RUN)], env=env, capture_output=True, timeout=30, check=False)
    assert done.returncode == status


def test_every_make_command_of_the_workflow_is_a_makefile_target(workflow: dict[str, Any]) -> None:
    runs = " ".join(run for job in workflow["jobs"].values() for run in _runs(job))
    called = set(re.findall(r"\bmake ([a-z][\w-]*)", runs))
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    targets = {m.group(1) for m in re.finditer(r"^([A-Za-z][\w-]*):", makefile, re.M)}
    assert called and called - targets == set()


def test_the_test_job_has_the_python_the_lambdas_run_a_pip_cache_and_chromium(workflow: dict[str, Any]) -> None:
    from tests.e2e.browser_requirement import CHROMIUM

    job = workflow["jobs"]["test"]
    runtime = re.search(r"^PYTHON\s*\?=\s*python(\S+)", (PROJECT_ROOT / "src" / "Makefile").read_text("utf-8"), re.M)
    assert runtime
    python = _uses(job, "actions/setup-python")["with"]
    assert str(python["python-version"]) == runtime.group(1)
    for pattern in str(python["cache-dependency-path"]).split():
        assert list(PROJECT_ROOT.glob(pattern)), f"the pip cache key names nothing: {pattern}"
    (chromium,) = [run for run in _runs(job) if "chromium" in run]
    assert str(CHROMIUM) in chromium  # installed where the browser tests look, before they run
    assert _runs(job).index(chromium) < _runs(job).index(ci_run_command()[0])


def test_the_deploy_environments_are_samconfig_environments_and_ci_deploys_what_it_built(
    workflow: dict[str, Any],
) -> None:
    triggers: Any = workflow.get("on") or workflow[True]  # type: ignore[index]  # YAML 1.1: a bare `on` is True
    offered = triggers["workflow_dispatch"]["inputs"]["environment"]["options"]
    samconfig = tomllib.loads((PROJECT_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert set(offered) <= {name for name in samconfig if name != "version"}

    def dry_run(*variables: str) -> str:
        argv = ["make", "-n", "deploy", "ENV=dev", *variables]
        return subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout

    assert "sam build" in dry_run() and "sam build" not in dry_run("BUILT=1")


def test_the_preflight_refuses_a_samconfig_that_would_make_deploy_ask_questions(
    workflow: dict[str, Any], tmp_path: Path
) -> None:
    """Run on today's samconfig.toml (no region): it must stop with a message, not let
    `sam deploy --guided` wait forever."""
    (preflight,) = [run for run in _runs(workflow["jobs"]["deploy"]) if "tomllib" in run]
    script = preflight.split("<<'PY'\n", 1)[1].rsplit("\nPY", 1)[0]

    def run(samconfig: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "samconfig.toml").write_text(samconfig, encoding="utf-8")
        env = {**os.environ, "DEPLOY_ENV": "dev"}
        argv = [sys.executable, "-c", script]
        return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30, check=False)

    refused = run((PROJECT_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert refused.returncode == 1 and "::error::" in refused.stdout and "region" in refused.stdout
    ready = run('[dev.deploy.parameters]\nregion = "us-east-1"\nconfirm_changeset = false\n')
    assert ready.returncode == 0, ready.stdout + ready.stderr


def test_no_secret_in_the_workflow_actions_pinned_and_nothing_installed_once_the_role_is_assumed(
    workflow: dict[str, Any],
) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "secrets." not in text and "client_secret" not in text
    assert not re.search(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", text)
    jobs = workflow["jobs"].values()
    assert all("${{" not in run for job in jobs for run in _runs(job))  # expressions reach scripts only via env
    uses = [step["uses"] for job in jobs for step in job["steps"] if "uses" in step]
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", use) for use in uses), uses
    deploy = workflow["jobs"]["deploy"]
    credentials = _uses(deploy, "aws-actions/configure-aws-credentials")["with"]
    assert "role-to-assume" in credentials and not {"aws-access-key-id", "aws-secret-access-key"} & set(credentials)
    steps = deploy["steps"]
    assume = next(i for i, step in enumerate(steps) if "configure-aws-credentials" in step.get("uses", ""))
    installs = [i for i, step in enumerate(steps) if re.search(r"\bmake (build|install)\b", step.get("run", ""))]
    assert installs and max(installs) < assume
    later = " ".join(step.get("run", "") for step in steps[assume:])
    assert "make deploy" in later and "BUILT=1" in later
    assert not re.search(r"pip install|make (build|install)", later)
