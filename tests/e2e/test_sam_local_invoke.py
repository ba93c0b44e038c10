"""Every sample in events/ through the real `sam local invoke` (a Lambda container per invoke, SAM's
Runtime Interface Emulator, an x86_64 `sam build`) answers what the in-process invoke answers.

Installs what it needs: Debian's docker.io and debootstrap (apt-get) when missing, a Lambda-like
python3.13 image built here once and cached under .cache/sam-local/ (gitignored), dockerd on a
private socket inside a network namespace this test creates, with moto and the Buy with Prime
sandbox on that namespace's bridge; dockerd is stopped and the namespace deleted at the end.
Needs root (skipped without it on a developer's machine; a failure in CI). `make invoke-test`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.local_invoke import EVENTS

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p for p in EVENTS.glob("*.json") if p.name != "env.json")
PYTHON = ROOT / ".venv" / "bin" / "python"
pytestmark = [pytest.mark.container, pytest.mark.slow]


def _driver(*args: str, runner: Any = subprocess.run, output: Path) -> dict[str, Any]:
    done = runner(
        [str(PYTHON), "-m", "devtools.sam_local.invoke", "--output", str(output), *args],
        cwd=ROOT,
        capture_output=True,
        timeout=900,
        **({} if runner is not subprocess.run else {"text": True}),
    )
    assert done.returncode == 0, f"driver failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    answers: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return answers


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(sam local invoke's answers, the in-process answers), one run of each over every sample."""
    if os.geteuid() != 0:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail("CI needs the sam local invoke test: it must run as root (network namespace, dockerd)")
        pytest.skip("sam local invoke in a private dockerd needs root")
    from devtools.sam_local.engine import ensure_docker_installed, private_engine
    from devtools.sam_local.image import rootfs_tarball
    from devtools.sam_local.invoke import sam_build

    ensure_docker_installed()  # docker.io and debootstrap, with apt-get on a fresh machine
    scratch = tmp_path_factory.mktemp("sam-invoke")
    started = time.monotonic()
    template = sam_build()  # outside the namespace: the build downloads wheels
    rootfs_tarball("x86_64", log=scratch / "image.log")
    prepared = time.monotonic()
    with private_engine() as engine:
        in_container = _driver(
            "--bind",
            engine.gateway,
            "--template",
            str(template),
            *map(str, SAMPLES),
            runner=engine.run,
            output=scratch / "sam.json",
        )
    invoked = time.monotonic()
    in_process = _driver("--in-process", *map(str, SAMPLES), output=scratch / "in-process.json")
    print(
        f"sam local invoke: build+image {prepared - started:.1f} s, {len(SAMPLES)} invokes {invoked - prepared:.1f} s",
        file=sys.stderr,
    )
    yield in_container, in_process


_LOCAL_ORIGIN = re.compile(r"http://(?:127\.0\.0\.1|172\.29\.93\.1):\d+")
_RANDOM = re.compile(r"(Atza\|)[\w-]+|((?:state|code_challenge|__Host-bwp-oauth)=)[\w-]+")


def normalised(answer: Any) -> Any:
    """What may differ between two runs: the sandbox's address, tokens and PKCE/state values it
    or the function drew at random, and timestamps of 'now' (epoch seconds or milliseconds)."""
    text = json.dumps(answer, sort_keys=True)
    text = _LOCAL_ORIGIN.sub("http://LOCAL", text)
    text = _RANDOM.sub(lambda m: (m.group(1) or m.group(2) or "") + "RANDOM", text)
    now = time.time()

    def clock(match: re.Match[str]) -> str:  # item versions are zero-padded milliseconds
        value = int(match.group(0))
        near = min(abs(value - now), abs(value / 1000 - now)) < 2 * 86_400
        return "NOW" if near else match.group(0)

    text = re.sub(r"(?<!\d)\d{10,16}(?!\d)", clock, text)
    return json.loads(text) if text.startswith(("{", "[")) else text


def test_every_sample_was_invoked(answers: tuple[dict[str, Any], dict[str, Any]]) -> None:
    in_container, in_process = answers
    assert sorted(in_container) == sorted(in_process) == [p.stem for p in SAMPLES]


@pytest.mark.parametrize("sample", [p.stem for p in SAMPLES])
def test_sam_local_invoke_answers_as_in_process(sample: str, answers: tuple[dict[str, Any], dict[str, Any]]) -> None:
    in_container, in_process = answers
    assert normalised(in_container[sample]) == normalised(in_process[sample])
    if isinstance(in_container[sample], dict) and "statusCode" in in_container[sample]:
        assert in_container[sample]["statusCode"] < 500  # never the "configuration error" of a static env file


def test_arm64_artifacts_import_their_handlers_and_native_modules_under_qemu() -> None:
    """The deployed architecture: an arm64 invoke under qemu takes about 45 s, past the timeouts,
    so each function's arm64 artifact is imported (handler and native modules) instead."""
    if os.geteuid() != 0:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail("CI needs the arm64 import smoke test: it must run as root (apt-get, debootstrap)")
        pytest.skip("the arm64 python3.13 is unpacked with debootstrap, as root")
    from devtools.sam_local.arm64 import smoke
    from devtools.sam_local.engine import ensure_installed

    ensure_installed({"debootstrap": "debootstrap", "qemu-aarch64-static": "qemu-user-static"})
    started = time.monotonic()
    results = smoke()
    print(f"arm64 import smoke: {len(results)} functions in {time.monotonic() - started:.1f} s", file=sys.stderr)
    assert len(results) == 6
    assert {r["machine"] for r in results.values()} == {"aarch64"}
    assert all("pydantic_core._pydantic_core" in r["native"] for r in results.values())
    assert "cryptography.hazmat.bindings._rust" in results["OAuthFunction"]["native"]  # pyjwt[crypto]
