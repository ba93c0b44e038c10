"""Replay Buy with Prime events from the partner bus's archive (template: PartnerEventArchive).

EventBridge re-sends the archived events of a time span to the bus, restricted to the stack's rule
(FilterArns), so they reach the events queue as they did the first time. The pipeline keys every
event on its ID and drops what it has processed, so a span may overlap what was already handled.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

WAIT_SECONDS = 600  # the longest `--wait` polls the replay's state
POLL_SECONDS = 5


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (UTC if it names no zone), or a span back from now: 90m, 6h, 2d."""
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[:-1].isdigit() and text[-1:] in units:
        return datetime.now(UTC) - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"{text!r} is neither an ISO 8601 time nor a span such as 90m, 6h or 2d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def start_replay(
    events: Any, archive_arn: str, rule_arn: str, since: datetime, until: datetime, *, wait: bool = False
) -> str:
    """Start (and with `wait`, follow) a replay of [since, until) to the stack's rule; a summary."""
    if since >= until:
        raise SystemExit(f"nothing to replay: {since.isoformat()} is not before {until.isoformat()}")
    archive = events.describe_archive(ArchiveName=archive_arn.rsplit("/", 1)[-1])
    since = max(since, archive["CreationTime"])  # nothing was archived before the archive existed
    name = f"bwpctl-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    events.start_replay(
        ReplayName=name,
        EventSourceArn=archive_arn,
        EventStartTime=since,
        EventEndTime=until,
        Destination={"Arn": archive["EventSourceArn"], "FilterArns": [rule_arn]},
    )
    state = "STARTING"
    deadline = time.monotonic() + WAIT_SECONDS
    while wait and state in {"STARTING", "RUNNING"} and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS if state == "RUNNING" else 0.5)
        state = events.describe_replay(ReplayName=name)["State"]
    return f"replay {name}: {since.isoformat()} to {until.isoformat()} -> the rule only; {state}"
