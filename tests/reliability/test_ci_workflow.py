""".github/workflows/ci.yml: it runs what .ci/run runs (the README's test command, with its
variables), only make targets that exist, with the Python the Lambdas run and the Chromium the
browser tests need; it deploys only by hand, after the tests, through OIDC, installing nothing after
it has the role, with no secret in the file and every action pinned."""

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


def make_targets(path: Path = PROJECT_ROOT / "Makefile") -> set[str]:
    return {m.group(1) for m in re.finditer(r"^([A-Za-z][\w-]*):", path.read_text(encoding="utf-8"), re.M)}


def readme_commands(path: Path = PROJECT_ROOT / "README.md") -> set[str]:
    """The commands of the README's code blocks, without their comments."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)
    return {line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()} - {""}


def test_ci_runs_the_readmes_test_command_and_the_workflow_runs_ci_run(workflow: dict[str, Any]) -> None:
    # given the command .ci/run runs and the variables it exports
    command, exported = ci_run_command()
    # then it is a command the README tells the reader to run, and the test job runs it the same way
    assert command in readme_commands(), f".ci/run runs {command!r}, which the README does not show"
    job = workflow["jobs"]["test"]
    assert command in _runs(job)
    assert exported.items() <= job.get("env", {}).items()


def test_every_make_command_of_the_workflow_is_a_makefile_target(workflow: dict[str, Any]) -> None:
    runs = " ".join(run for job in workflow["jobs"].values() for run in _runs(job))
    called = set(re.findall(r"\bmake ([a-z][\w-]*)", runs))
    assert called, "the workflow runs no make target: the check would be vacuous"
    assert called - make_targets() == set()


def test_the_test_job_has_the_python_the_lambdas_run_a_pip_cache_and_chromium(workflow: dict[str, Any]) -> None:
    from tests.e2e.browser_requirement import CHROMIUM

    job = workflow["jobs"]["test"]
    # given the Python src/Makefile compiles the artifacts with (the runtime's)
    makefile = (PROJECT_ROOT / "src" / "Makefile").read_text(encoding="utf-8")
    runtime = re.search(r"^PYTHON\s*\?=\s*python(\S+)", makefile, re.M)
    assert runtime
    # then the job sets up that Python, with a pip cache keyed on files that exist
    python = _uses(job, "actions/setup-python")["with"]
    assert str(python["python-version"]) == runtime.group(1)
    for pattern in str(python["cache-dependency-path"]).split():
        assert list(PROJECT_ROOT.glob(pattern)), f"the pip cache key names nothing: {pattern}"
    # and installs the Chromium the browser tests look for before it runs them (CI=true: no skip)
    (chromium,) = [run for run in _runs(job) if "chromium" in run]
    assert str(CHROMIUM) in chromium
    command, _ = ci_run_command()
    assert _runs(job).index(chromium) < _runs(job).index(command)


def test_deploy_is_manual_needs_the_tests_and_assumes_a_role_through_oidc(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["deploy"]
    assert job["if"] == "github.event_name == 'workflow_dispatch'"  # never on a push or a pull request
    assert job["needs"] == "test"
    credentials = _uses(job, "aws-actions/configure-aws-credentials")["with"]
    assert "role-to-assume" in credentials
    assert "aws-access-key-id" not in credentials and "aws-secret-access-key" not in credentials


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
