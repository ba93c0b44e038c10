"""The one table `make bench` prints, and bench/RESULTS.md."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Row:
    metric: str
    measured: str
    target: str = ""
    ok: bool | None = None  # None: no target, for information

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("yes" if self.ok else "NO")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(value: float) -> str:
    return f"{value:.2f}x"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def table(rows: Sequence[Row]) -> str:
    """A Markdown table, aligned so it also reads well in a terminal."""
    header = ("metric", "measured", "target", "ok")
    cells = [header, *((r.metric, r.measured, r.target, r.verdict) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = ["| " + " | ".join(c[i].ljust(widths[i]) for i in range(4)) + " |" for c in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write_results(path: Path, rows: Sequence[Row], notes: Sequence[str], command: str, seconds: float) -> None:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = [
        "# Benchmark results",
        "",
        f"`{command}` on {when} ({seconds:.0f} s). Ratios are measured side by side in one run, so this",
        "machine's speed cancels out; absolute times are this machine's (x86_64, shared CPU).",
        "",
        table(rows),
        "",
        *(f"- {note}" for note in notes),
        "",
    ]
    path.write_text("\n".join(text), encoding="utf-8")
