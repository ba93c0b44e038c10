"""The idle sweep at fleet scale: N installations, all idle, swept by a fresh (cold) container
against moto and the sandbox. Counts the AWS requests per refresh and the index queries, reads
the installation items' real sizes, and prices a month at 10k installations from those counts.

Prices (us-east-1, on-demand, December 2026): DynamoDB $0.625 per million write request units and
$0.125 per million read request units; Lambda arm64 $0.0000133334 per GB-second and $0.20 per
million requests; a scheduled EventBridge rule costs nothing. Units: a write costs one unit per
started KB of the larger of the item's old and new versions, a strongly consistent read one per
started 4 KB, an eventually consistent Query half a unit per started 4 KB it reads; an update that
changes an index key writes the index twice (delete + put) at one unit per started KB of the index
entry (its keys plus 100 bytes).
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from dataclasses import dataclass
from typing import Any

import boto3

from bench.local import TABLE_NAME, Calls, World, instrumented
from bench.report import Row

FLEET = 10_000
DAYS = 30
WRU, RRU = 0.625e-6, 0.125e-6
GB_SECOND, INVOCATION = 0.0000133334, 0.20e-6
# Buy with Prime's token sizes are not documented; Login with Amazon's run to about 400-900
# characters. Priced with 1,024-character tokens (more than measured in the sandbox).
ASSUMED_TOKEN_CHARS = 1024
ASSUMED_TOKEN_LATENCY_S = 0.3  # one token request to Buy with Prime, for the Lambda duration


@dataclass
class SweepResult:
    installations: int
    wall_s: float
    requests: dict[str, int]
    refreshed: int
    item_bytes: int  # without its two tokens
    index_entry_bytes: int
    memory_mb: int


def run(world: World, installations: int = 500) -> SweepResult:
    from shared.models import TokenSet
    from shared.observability import logger
    from shared.store.installations import InstallationStore
    from sweep import handler
    from sweep.dependencies import Dependencies

    setup = InstallationStore(boto3.client("dynamodb"), TABLE_NAME)
    idle_since = time.time() - 2 * 24 * 3600
    for i in range(installations):
        name = f"amzn1.bwp.installation.fleet-{i:05d}"
        setup.save_installation(name, TokenSet.model_validate(world.sandbox.issue_tokens(name)), idle_since)
    calls = Calls()
    deps = instrumented(Dependencies, world.environ, calls)
    handler.reset_dependencies(deps)
    logger.registered_handler.setStream(io.StringIO())  # type: ignore[attr-defined]
    from devtools.apigw import LambdaContext
    from devtools.template import function_timeout, load_template

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        report = handler.lambda_handler({}, LambdaContext("SweepFunction", function_timeout("SweepFunction")))
    wall = time.perf_counter() - started
    handler.reset_dependencies()
    items = boto3.client("dynamodb").scan(TableName=TABLE_NAME)["Items"]  # the bench's own look, not the sweep's
    sizes = [_item_bytes(i) - _value_bytes(i["access_token"]) - _value_bytes(i["refresh_token"]) for i in items]
    memory = int(load_template()["Resources"]["SweepFunction"]["Properties"]["MemorySize"])
    return SweepResult(
        installations=installations,
        wall_s=wall,
        requests=dict(calls.requests),
        refreshed=int(report["refreshed"]),
        item_bytes=max(sizes),
        index_entry_bytes=_index_entry_bytes(),
        memory_mb=memory,
    )


def rows(result: SweepResult) -> tuple[list[Row], list[str]]:
    n, per = result.installations, max(1, result.refreshed)
    requests = {op.split(".")[-1]: count for op, count in result.requests.items() if op.startswith("dynamodb.")}
    by_op = {op: count / per for op, count in requests.items()}
    queries = requests.get("Query", 0)
    item = result.item_bytes + 2 * ASSUMED_TOKEN_CHARS  # with real-size tokens
    write_units = math.ceil(item / 1024)
    read_units = math.ceil(item / 4096)
    index_write = 2 * math.ceil(result.index_entry_bytes / 1024)  # the hour changes: delete + put
    per_refresh_wru = by_op.get("UpdateItem", 0) * write_units + index_write
    per_refresh_rru = by_op.get("GetItem", 0) * read_units
    refreshes = FLEET * DAYS  # worst case: every installation idle, one sweep refresh a day each
    gauge_rru = 24 * DAYS * 2 * math.ceil(FLEET * result.index_entry_bytes / 4096) / 2
    lambda_s = refreshes * (ASSUMED_TOKEN_LATENCY_S + 0.04) / 4 + 24 * DAYS * 1.0  # 4 workers; 1 s a run
    costs = {
        "table + index writes": refreshes * per_refresh_wru * WRU,
        "reads (items + index queries)": (refreshes * per_refresh_rru + gauge_rru) * RRU,
        "Lambda": lambda_s * result.memory_mb / 1024 * GB_SECOND + 24 * DAYS * INVOCATION,
    }
    busy = FLEET * DAYS * 24 * index_write * WRU  # upper bound: every installation refreshed every hour
    out = [
        Row(
            f"Idle sweep, {n} idle installations, cold container: DynamoDB requests per refresh",
            f"{sum(by_op.values()):.2f} ({', '.join(f'{op} {v:.2f}' for op, v in sorted(by_op.items()))})",
        ),
        Row("  Scan requests", str(requests.get("Scan", 0)), "0", not requests.get("Scan")),
        Row("  index Query requests for the whole sweep (candidates + 2 gauges)", str(queries)),
        Row(
            f"  monthly cost at {FLEET:,} installations, all idle (worst case)",
            f"${sum(costs.values()):.2f}",
            "; ".join(f"{k} ${v:.2f}" for k, v in costs.items()),
        ),
        Row(
            f"  index upkeep for {FLEET:,} busy installations (refreshed every hour, upper bound)",
            f"${busy:.2f} / month",
        ),
    ]
    notes = [
        f"Idle sweep: {result.refreshed} of {n} refreshed in {result.wall_s:.1f} s locally (moto one request at a "
        f"time, the sandbox instant). Priced: installation item {item} bytes with {ASSUMED_TOKEN_CHARS}-character "
        f"tokens ({write_units} write units per update, {read_units} read unit per read), index entry "
        f"{result.index_entry_bytes} bytes, {ASSUMED_TOKEN_LATENCY_S} s per token request, "
        f"{result.memory_mb} MB; the gauges read the whole index every hour."
    ]
    return out, notes


def _value_bytes(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "N":
        return len(str(raw).lstrip("-").replace(".", "")) // 2 + 2
    return len(str(raw).encode())


def _item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _index_entry_bytes() -> int:
    example = {
        "pk": {"S": "INSTALLATION#amzn1.bwp.installation.fleet-00000"},
        "sk": {"S": "INSTALLATION"},
        "sweep_shard": {"S": "NEEDS_REAUTHORIZATION#7"},
        "refreshed_hour": {"N": "1796216400"},
    }
    return _item_bytes(example) + 100
