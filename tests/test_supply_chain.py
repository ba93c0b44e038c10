"""The Lambda artifacts' dependencies are locked with hashes (src/requirements*.lock, from
scripts/lock_requirements.py) and src/Makefile installs them with --require-hashes: a wheel whose
hash differs fails the build. `make audit`'s verdict never reads "no vulnerabilities" when it could
not check. All offline: the build runs against a wheel folder made here."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from devtools.template import PROJECT_ROOT

SRC = PROJECT_ROOT / "src"
sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
from audit_requirements import verdict  # noqa: E402


def pins(requirements: Path) -> dict[str, str]:
    """name -> pinned version, following `-r` includes."""
    found: dict[str, str] = {}
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split("#")[0].strip()
        if line.startswith("-r "):
            found.update(pins(requirements.parent / line[3:].strip()))
        elif line:
            requirement = Requirement(line)
            found[requirement.name.lower()] = str(requirement.specifier).removeprefix("==")
    return found


def locked(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a lock file."""
    text = lock.read_text(encoding="utf-8").replace("\\\n", " ")
    entries = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            spec, *hashes = line.split()
            name, _, version = spec.partition("==")
            entries[name] = (version, [h.removeprefix("--hash=sha256:") for h in hashes])
    return entries


@pytest.mark.parametrize(
    ("source", "lock"),
    [("requirements.txt", "requirements.lock"), ("requirements-oauth.txt", "requirements-oauth.lock")],
)
def test_every_pin_is_locked_at_its_version_and_every_locked_wheel_has_a_hash(source: str, lock: str) -> None:
    entries = locked(SRC / lock)
    for name, version in pins(SRC / source).items():
        assert entries[name][0] == version, f"{lock}: {name} is not {version}: run make lock"
    for name, (_, hashes) in entries.items():
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name


def test_only_the_oauth_artifact_gets_the_crypto_stack() -> None:
    core, oauth = locked(SRC / "requirements.lock"), locked(SRC / "requirements-oauth.lock")
    assert {name: core[name] for name in core} == {name: oauth[name] for name in core}  # the same pins
    assert {"pyjwt", "cryptography", "cffi"} <= set(oauth) - set(core)


def make_wheel(folder: Path, name: str, version: str) -> str:
    """A minimal pure-Python wheel in `folder`; its sha256."""
    files = {
        f"{name}/__init__.py": b"VALUE = 1\n",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for path, data in files.items()
    ]
    files[f"{name}-{version}.dist-info/RECORD"] = (
        "\n".join([*record, f"{name}-{version}.dist-info/RECORD,,"]) + "\n"
    ).encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return hashlib.sha256(wheel.read_bytes()).hexdigest()


def build(tmp_path: Path, lock_text: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test.lock").write_text(lock_text, encoding="utf-8")
    artifacts = tmp_path / "artifact"
    artifacts.mkdir(exist_ok=True)
    arguments = [
        f"ARTIFACTS_DIR={artifacts}",
        f"LOCK_DIR={tmp_path}",
        "CORE_LOCK=test.lock",
        f"PIP_OPTIONS=--no-index --find-links {tmp_path / 'wheels'}",
        f"PYTHON={sys.executable}",
    ]
    environment = {**os.environ, "PIP_CONFIG_FILE": os.devnull}  # no index from the machine's pip.conf
    return subprocess.run(
        ["make", "-s", "-C", str(SRC), "build-ExampleConsumerFunction", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        check=False,
    )


def test_the_build_installs_a_locked_wheel_and_fails_on_a_hash_mismatch(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    digest = make_wheel(tmp_path / "wheels", "lockprobe", "1.0")
    good = build(tmp_path, f"lockprobe==1.0 --hash=sha256:{digest}\n")
    assert good.returncode == 0, good.stderr[-2000:]
    assert (tmp_path / "artifact" / "lockprobe" / "__init__.py").is_file()

    tampered = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    bad = build(tmp_path, f"lockprobe==1.0 --hash=sha256:{tampered}\n")
    assert bad.returncode != 0
    assert "DO NOT MATCH THE HASHES" in bad.stderr

    unhashed = build(tmp_path, "lockprobe==1.0\n")
    assert unhashed.returncode != 0 and "hash" in unhashed.stderr.lower()


def report(*dependencies: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": list(dependencies)}


def test_the_audit_verdict_is_clean_only_when_everything_was_checked() -> None:
    clean = report({"name": "requests", "version": "2.34.2", "vulns": []})
    assert verdict({"a.lock": clean})[0] == 0
    vulnerable = report({"name": "urllib3", "version": "2.0.0", "vulns": [{"id": "GHSA-x", "fix_versions": ["2.0.7"]}]})
    status, lines = verdict({"a.lock": clean, "b.lock": vulnerable})
    assert status == 1 and any("GHSA-x" in line and "2.0.7" in line for line in lines)
    skipped = report({"name": "idna", "skip_reason": "Dependency not found on PyPI"})
    status, lines = verdict({"a.lock": clean, "b.lock": skipped})
    assert status == 2 and "could NOT be checked" in lines[-1]
    assert verdict({"a.lock": "pip-audit failed (exit 1): connection refused"})[0] == 2
