"""Start events runners (devtools.local_stack.events_runner: the events function in its own process,
fed from the local stack's queue) and read what they say: the function's per-event verdict logs
and EMF metrics on stdout, the runner's batch lines on stderr."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from devtools.local_stack import LocalStack
from devtools.template import PROJECT_ROOT

VERDICT_METRICS = (
    "EventsProcessed",
    "EventsDuplicate",
    "EventsUnroutable",
    "EventsFailed",
    "EventsNeedingReauthorization",
    "EventsRetried",
)


def runner_environment(stack: LocalStack) -> dict[str, str]:
    """What the function's process gets: the template's variables resolved to the local stack, a
    Lambda's process variables pointed at moto, and the import paths (src/ and the project)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "BWP_", "POWERTOOLS_")) and name not in {"TABLE_NAME", "PYTHONPATH"}
    }
    environment.update(stack.aws.process_environment())
    environment.update(stack.env_for("EventsFunction"))
    environment["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT / "src"), str(PROJECT_ROOT)])
    return environment


@dataclass
class Verdict:
    verdict: str
    event_id: str
    message_id: str
    reason: str | None


@dataclass
class RunnerOutput:
    """Everything one or more runners wrote, read incrementally from their files."""

    verdicts: list[Verdict] = field(default_factory=list)
    metrics: Counter[str] = field(default_factory=Counter)
    steps: list[dict[str, Any]] = field(default_factory=list)
    final_count: int = 0  # verdicts other than retry, kept current for other threads to read
    _offsets: dict[Path, int] = field(default_factory=dict)

    def read(self, path: Path) -> None:
        """Take in the complete lines `path` gained since the last read."""
        with path.open("rb") as handle:
            handle.seek(self._offsets.get(path, 0))
            data = handle.read()
        complete = data.rfind(b"\n") + 1
        self._offsets[path] = self._offsets.get(path, 0) + complete
        for line in data[:complete].decode("utf-8", errors="replace").splitlines():
            self._take(line)

    def _take(self, line: str) -> None:
        try:
            document = json.loads(line)
        except ValueError:
            return
        if not isinstance(document, dict):
            return
        message = str(document.get("message") or "")
        if message.startswith("event ") and "message_id" in document:
            self.final_count += message != "event retry"
            self.verdicts.append(
                Verdict(
                    message.removeprefix("event "),
                    str(document.get("event_id")),
                    str(document["message_id"]),
                    document.get("reason"),
                )
            )
        elif "_aws" in document:
            for name in VERDICT_METRICS:
                value = document.get(name)
                self.metrics[name] += int(sum(value) if isinstance(value, list) else value or 0)
        elif "step" in document:
            self.steps.append(document)

    def final(self) -> int:
        return self.final_count


class Runner:
    """One events-runner process; its stdout/stderr go to files under `directory`."""

    def __init__(self, stack: LocalStack, directory: Path, name: str, *arguments: str) -> None:
        self.stdout_path = directory / f"{name}.stdout.jsonl"
        self.stderr_path = directory / f"{name}.stderr.jsonl"
        self._stdout: IO[bytes] = self.stdout_path.open("wb")
        self._stderr: IO[bytes] = self.stderr_path.open("wb")
        command = [
            sys.executable,
            "-m",
            "devtools.local_stack.events_runner",
            "--queue-url",
            stack.aws.queue_url("EventsQueue"),
            "--queue-arn",
            stack.aws.queue_arn("EventsQueue"),
            *arguments,
        ]
        self.process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=runner_environment(stack), stdout=self._stdout, stderr=self._stderr
        )

    def read_into(self, output: RunnerOutput) -> None:
        output.read(self.stdout_path)
        output.read(self.stderr_path)

    def steps(self) -> list[dict[str, Any]]:
        output = RunnerOutput()
        output.read(self.stderr_path)
        return output.steps

    def wait_for_step(self, step: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [s for s in self.steps() if s["step"] == step]
            if found:
                return found[0]
            if self.process.poll() is not None:
                raise AssertionError(f"the runner exited ({self.process.returncode}) before '{step}': {self.tail()}")
            time.sleep(0.02)
        raise AssertionError(f"no '{step}' from the runner within {timeout} s: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no handler, no cleanup, no last word."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the runner did not stop by itself within {timeout} s: {self.tail()}") from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self._stdout.close()
        self._stderr.close()
        self._join_the_secret_scan()

    def _join_the_secret_scan(self) -> None:
        """The process's logs join the session's scan for minted secrets (tests/security/log_scan.py):
        the tokens the sandbox issued in this process must not appear in the function's output."""
        from tests.security.log_scan import BUFFER

        for path in (self.stdout_path, self.stderr_path):
            BUFFER.add(path.read_text(encoding="utf-8", errors="replace"))

    def tail(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-1500:]
