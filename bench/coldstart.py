"""Cold start: import time of each handler from its artifact, against `import boto3`, in fresh
python3.13 processes that cannot write bytecode (as on Lambda's read-only disk).

Runs are interleaved (one of each variant per round) so that a busy machine slows all of them
alike; each figure is the median of the rounds.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import median

CHILD = Path(__file__).with_name("coldstart_child.py")
FIRST_REQUEST = {"oauth.handler": "oauth", "events.handler": "events"}


@dataclass(frozen=True)
class Variant:
    label: str
    task_dir: Path | None  # None: the boto3 baseline (no artifact)
    module: str


@dataclass
class Timing:
    import_s: list[float] = field(default_factory=list)
    import_cpu_s: list[float] = field(default_factory=list)
    first_request_s: list[float] = field(default_factory=list)
    without_pyc: list[str] = field(default_factory=list)
    loaded: int = 0

    @property
    def wall(self) -> float:
        return median(self.import_s)

    @property
    def cpu(self) -> float:
        return median(self.import_cpu_s)

    @property
    def with_first_request(self) -> float:
        return median([a + b for a, b in zip(self.import_s, self.first_request_s, strict=True)])


def _once(python: Path, runtime: Path, variant: Variant) -> dict[str, Any]:
    args = [str(variant.task_dir or ""), str(runtime), variant.module]
    if variant.task_dir is not None:
        args.append(FIRST_REQUEST.get(variant.module, ""))
    out = subprocess.run(  # noqa: S603 - the project's interpreter, our own script
        [str(python), "-I", "-S", "-B", str(CHILD), *args],
        capture_output=True,
        text=True,
        env={"PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
        cwd="/",
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"importing {variant.module} from {variant.task_dir} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(python: Path, runtime: Path, variants: list[Variant], rounds: int) -> dict[str, Timing]:
    timings: dict[str, Timing] = defaultdict(Timing)
    for _ in range(rounds):
        for variant in variants:
            result = _once(python, runtime, variant)
            timing = timings[variant.label]
            timing.import_s.append(result["import_s"])
            timing.import_cpu_s.append(result["import_cpu_s"])
            if "first_request_s" in result:
                timing.first_request_s.append(result["first_request_s"])
            timing.without_pyc = result.get("without_pyc", [])
            timing.loaded = result.get("loaded", 0)
    return dict(timings)
