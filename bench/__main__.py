"""`make bench` (= `.venv/bin/python -m bench`): one table of ratios measured side by side.

    .venv/bin/python -m bench [--rounds 7] [--rebuild] [--only budget,coldstart,events,oauth,sweep,day]
                              [--day-window MINUTES] [--no-write]

1. Cold start: each handler imported from its `sam build` artifact (an x86_64 copy: arm64 wheels
   cannot load here) in a fresh python3.13 that cannot write bytecode, against `import boto3`
   (the runtime's, from .venv) in the same conditions; before (SAM's python_pip build) and after
   (src/Makefile), with and without the shipped bytecode. Zipped size of the arm64 artifacts.
2. Events: batches of 10 and 100 through the events function against the sandbox with 100 ms of
   GraphQL latency, at steady state: wall time per API round trip, AWS and GraphQL requests per
   event, and the time spent in DynamoDB (moto, one request at a time).
3. OAuth: Launch + Install in the handler, minus the time spent waiting on the sandbox.
4. Sweep: 500 idle installations swept by a cold container; requests per refresh, and the monthly
   cost at 10k installations priced from them (bench/sweep.py).
5. Day: a window of a simulated day (1M events over 10k installations, Zipf-skewed, five cold
   containers) on a simulated clock; DynamoDB requests, read and write units, GraphQL calls, token
   refreshes per event and $ per million events from the counted requests (bench/day.py). Its own
   section of RESULTS.md, rewritten also by `--only day`.
0. Budget: every timeout, lease and wait derived from src/shared/budget.py and the template.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from bench import PROJECT_ROOT, artifacts, budget, coldstart, day, events_batch, oauth_flow, sweep
from bench.local import local_world
from bench.report import Row, Section, ms, ratio, replace_section, table, write_results

MB = 1_000_000
COLD_START_TARGET = 2.5
SIZE_TARGET = 10 * MB
BATCH_TARGET = 2.0
REQUESTS_TARGET = 1.2
RESULTS = Path(__file__).with_name("RESULTS.md")
SECTIONS = "budget,coldstart,events,oauth,sweep,day"
DAY_TITLE = "A simulated day (bench/day.py)"


STARTED = time.perf_counter()


def say(message: str) -> None:
    print(f"[bench {time.perf_counter() - STARTED:5.0f} s] {message}", file=sys.stderr, flush=True)


def cold_start(rounds: int, force_build: bool, rows: list[Row], notes: list[str]) -> None:
    work = artifacts.work_dir()
    say(f"sam build (after/before x arm64/x86_64, those whose inputs changed) into {work} ...")
    builds, rebuilt = artifacts.build_all(work, force=force_build)
    say(f"built: {', '.join(rebuilt) or 'nothing (all four unchanged since the last run)'}")
    say("zipping the arm64 artifacts ...")
    sizes = artifacts.zipped_sizes(
        {
            f"{name}/{fn}": builds[name, "arm64"].function(fn)
            for name in ("after", "before")
            for fn in artifacts.FUNCTIONS
        }
    )
    runtime = artifacts.runtime_dir(work)
    python = artifacts.interpreter()
    variants = [coldstart.Variant("boto3", None, "boto3")]
    deployed = work / "deployed"
    for fn in artifacts.FUNCTIONS:
        module = artifacts.HANDLER_MODULE[fn]
        built = builds["after", "x86_64"].function(fn)
        for label, source, pyc in (
            ("before", builds["before", "x86_64"].function(fn), "none"),
            ("no-pyc", built, "none"),
            ("timestamp-pyc", built, "timestamp"),
            ("after", built, "shipped"),
        ):
            target = artifacts.as_deployed(source, deployed / f"{fn}-{label}", pyc=pyc)
            variants.append(coldstart.Variant(f"{fn}/{label}", target, module))
    say(f"cold start: {len(variants)} variants x {rounds} rounds, interleaved ...")
    timings = coldstart.measure(python, runtime, variants, rounds)
    boto3 = timings["boto3"]

    for fn in artifacts.FUNCTIONS:
        module = artifacts.HANDLER_MODULE[fn]
        after = timings[f"{fn}/after"]
        value = after.wall / boto3.wall
        rows.append(
            Row(
                f"{fn} cold start: import {module} / import boto3",
                f"{ratio(value)} ({ms(after.wall)} / {ms(boto3.wall)}; CPU {ratio(after.cpu / boto3.cpu)})",
                f"<= {COLD_START_TARGET}x",
                value <= COLD_START_TARGET,
            )
        )
        for label, text in (
            ("before", "before: SAM python_pip build, no .pyc"),
            ("no-pyc", "after, its .pyc removed"),
            ("timestamp-pyc", "after, plain compileall .pyc instead (zip-dated)"),
        ):
            other = timings[f"{fn}/{label}"]
            rows.append(
                Row(
                    f"  {text}",
                    f"{ratio(other.wall / boto3.wall)} ({ms(other.wall)}; CPU {ratio(other.cpu / boto3.cpu)})",
                )
            )
        first, first_before = after.with_first_request, timings[f"{fn}/before"].with_first_request
        rows.append(
            Row(
                "  + what its first request imports (routes, clients' code)",
                f"{ratio(first / boto3.wall)} ({ms(first)}; before {ratio(first_before / boto3.wall)})",
            )
        )
        rows.append(
            Row(
                "  modules a cold start loads without a shipped .pyc",
                f"{len(after.without_pyc)} of {after.loaded}",
                "0",
                not after.without_pyc,
            )
        )
        if after.without_pyc:
            notes.append(f"{fn}: no .pyc for {', '.join(after.without_pyc[:12])}")
        size, before_size = sizes[f"after/{fn}"], sizes[f"before/{fn}"]
        rows.append(
            Row(
                f"{fn} artifact, zipped (arm64)",
                f"{size / MB:.2f} MB (before {before_size / MB:.2f} MB)",
                f"< {SIZE_TARGET / MB:.0f} MB",
                size < SIZE_TARGET,
            )
        )
    notes.append(
        f"Cold start: medians of {rounds} interleaved runs of `{python} -I -S -B` (no site-packages, no "
        "bytecode written), the artifact first on sys.path, then boto3 & co. from .venv (with the .pyc pip "
        "compiled, as Lambda's runtime ships them); every file dated 1980 as SAM's zip leaves them. CPU: the "
        f"same ratio in CPU time, steadier on a busy machine. `import boto3` took {ms(boto3.wall)} "
        f"({ms(boto3.cpu)} CPU). The x86_64 artifacts measured are `sam build`s of a copy of the template "
        "with Architectures [x86_64] and LAMBDA_ARCH=x86_64 (same src/Makefile); sizes are the arm64 builds."
    )


def events_and_oauth(only: set[str], rows: list[Row], notes: list[str]) -> None:
    oauth_rows: list[Row] = []  # run first (a fresh container is then really fresh), shown last
    try:  # moto without its per-transaction copy of the whole table, when the local stack has it
        from devtools.local_stack.fast_moto import fast_moto

        moto_mode: Any = fast_moto()
        notes.append("moto ran with devtools.local_stack.fast_moto (no whole-table copy per transaction).")
    except ImportError:
        moto_mode = contextlib.nullcontext()
    with moto_mode, local_world() as world:
        if "oauth" in only:
            say("oauth: launch + install ...")
            oauth = oauth_flow.run(world, flows=7)
            server, aws = oauth.median("server_s"), oauth.median("aws_s")
            oauth_rows.append(
                Row(
                    "OAuth launch + install, in the handler minus waiting on the sandbox (warm)",
                    f"{ms(server)} (AWS calls {ms(aws)}, the rest {ms(server - aws)})",
                )
            )
            first = oauth.first
            oauth_rows.append(
                Row(
                    "  first flow on a fresh container (modules already imported)",
                    f"{ms(first.server_s)} (AWS calls {ms(first.aws_s)}, creating 2 boto3 clients "
                    f"{ms(first.clients_s)}, the rest {ms(first.server_s - first.aws_s - first.clients_s)})",
                )
            )
            notes.append(
                f"OAuth: median of {len(oauth.warm)} warm flows; waiting on the sandbox (token endpoint) "
                f"{ms(oauth.median('sandbox_s'))} taken out; {oauth.warm[0].aws_requests} AWS requests per flow "
                f"({first.aws_requests} on a fresh container)."
            )
        if "events" in only:
            say("events: batches of 10 and 100 against the sandbox (100 ms GraphQL latency) ...")
            result = events_batch.run(world, {10: 5, 100: 3})
            trip = result.round_trip_s
            for size in (10, 100):
                wall, without = result.wall(size), result.wall_without_dynamodb(size)
                target = size == 10
                rows.append(
                    Row(
                        f"Events batch of {size}: wall time / one GraphQL round trip",
                        f"{ratio(wall / trip)} ({ms(wall)} / {ms(trip)})",
                        f"<= {BATCH_TARGET}x" if target else "",
                        wall / trip <= BATCH_TARGET if target else None,
                    )
                )
                rows.append(
                    Row(
                        "  without the time DynamoDB calls were in flight (moto, serialised)",
                        f"{ratio(without / trip)} ({ms(without)}; DynamoDB {ms(result.dynamodb(size))})",
                    )
                )
                per_event = result.per_event(size, "aws_requests")
                rows.append(
                    Row(
                        f"  AWS requests per event, warm (batch of {size})",
                        f"{per_event:.2f}",
                        f"<= {REQUESTS_TARGET}",
                        per_event <= REQUESTS_TARGET,
                    )
                )
                rows.append(
                    Row(
                        f"  GraphQL requests per event (batch of {size}, one order each)",
                        f"{result.per_event(size, 'graphql_requests'):.2f}",
                    )
                )
                rows.append(
                    Row("  records sent back to the queue", str(result.failures(size)), "0", not result.failures(size))
                )
                phases = ", ".join(
                    f"{name.strip('_').replace('_', ' ')} {ms(result.phase(size, name))}"
                    for name in events_batch.PHASES
                )
                requests = ", ".join(f"{op} {n}" for op, n in sorted(result.requests_by_operation[size].items()))
                per_request = result.dynamodb(size) / max(1.0, result.per_event(size, "aws_requests") * size)
                notes.append(
                    f"Events batch of {size} (median of {len(result.runs[size])}): {phases}, "
                    f"then the writes; AWS requests: {requests}; moto answered them one at a time, "
                    f"{ms(per_request)} each (real DynamoDB serves the writes concurrently)."
                )
        if "sweep" in only:
            say("sweep: 500 idle installations, one cold container ...")
            sweep_rows, sweep_notes = sweep.rows(sweep.run(world))
            rows.extend(sweep_rows)
            notes.extend(sweep_notes)
    rows.extend(oauth_rows)


def simulated_day(window_minutes: float) -> tuple[list[Row], list[str], float]:
    config = day.DayConfig(window_seconds=window_minutes * 60)
    say(
        f"day: {config.window_seconds / 60:.0f} simulated minutes at {config.events_per_day:,} events/day over "
        f"{config.installations:,} installations ..."
    )
    started = time.perf_counter()
    day_rows, day_notes = day.rows(day.run(config, progress=say))
    return day_rows, day_notes, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="cold-start runs per variant (median)")
    parser.add_argument("--rebuild", action="store_true", help="build all four even if their inputs did not change")
    parser.add_argument("--only", default=SECTIONS, help="comma-separated sections")
    parser.add_argument(
        "--day-window", type=float, default=day.DayConfig.window_seconds / 60, help="simulated minutes of the day"
    )
    parser.add_argument("--no-write", action="store_true", help=f"do not update {RESULTS.name}")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    started = time.perf_counter()
    rows: list[Row] = []
    notes: list[str] = []
    if "budget" in only:
        rows += budget.rows()
    if "coldstart" in only:
        cold_start(args.rounds, args.rebuild, rows, notes)
    if only & {"events", "oauth", "sweep"}:
        events_and_oauth(only, rows, notes)
    sections: list[Section] = []
    if "day" in only:
        day_rows, day_notes, day_seconds = simulated_day(args.day_window)
        command = "make bench" if only == set(SECTIONS.split(",")) else "python -m bench --only day"
        window = "" if args.day_window == day.DayConfig.window_seconds / 60 else f" --day-window {args.day_window:g}"
        sections.append(Section(DAY_TITLE, day_rows, day_notes, command + window, day_seconds))
        rows += day_rows
        notes += day_notes
    elapsed = time.perf_counter() - started
    print(table(rows))
    for note in notes:
        print(f"- {note}")
    print(f"({elapsed:.0f} s)")
    if not args.no_write and only == set(SECTIONS.split(",")):
        command = "make bench" + (f" (--rounds {args.rounds})" if args.rounds != 7 else "")
        main_rows = rows[: len(rows) - sum(len(s.rows) for s in sections)]
        main_notes = notes[: len(notes) - sum(len(s.notes) for s in sections)]
        write_results(RESULTS, main_rows, main_notes, command, elapsed, sections=sections)
        say(f"wrote {RESULTS.relative_to(PROJECT_ROOT)}")
    elif not args.no_write and only == {"day"}:
        replace_section(RESULTS, sections[0])
        say(f"wrote the day's section of {RESULTS.relative_to(PROJECT_ROOT)}")
    return 0  # figures, not a gate: a missed target shows as NO in the table


if __name__ == "__main__":
    sys.exit(main())
