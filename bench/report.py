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


@dataclass(frozen=True)
class Section:
    """A part of RESULTS.md with its own table, which a run of that part alone can rewrite."""

    title: str
    rows: Sequence[Row]
    notes: Sequence[str]
    command: str
    seconds: float

    def text(self) -> str:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            f"## {self.title}",
            "",
            f"`{self.command}` on {when} ({self.seconds:.0f} s).",
            "",
            table(self.rows),
            "",
        ]
        return "\n".join([*lines, *(f"- {note}" for note in self.notes), ""])


def write_results(
    path: Path,
    rows: Sequence[Row],
    notes: Sequence[str],
    command: str,
    seconds: float,
    *,
    sections: Sequence[Section] = (),
) -> None:
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
        *(section.text() for section in sections),
    ]
    path.write_text("\n".join(text), encoding="utf-8")


def replace_section(path: Path, section: Section) -> None:
    """Rewrite one section of RESULTS.md (appended when absent), leaving the rest as it was."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    heading = f"## {section.title}\n"
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section.text()
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section.text() + (text[end + 1 :] if end >= 0 else "")
    path.write_text(text, encoding="utf-8")
