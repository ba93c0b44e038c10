"""The snapshots of one batch, written together as their answers arrive.

A snapshot is an immutable item per server version (shared.store.keys.snapshot_key): writing it
needs no condition, so the snapshots of a batch's resources can share BatchWriteItems (25 items
each) instead of one PutItem per resource. Units are the same; requests fall from one per
hydrated resource to about one per batch.
With RehydrateOpenOrdersHours on, each order snapshot brings its open-order marker into the same
request (a flush of more than 12 orders then takes two BatchWriteItems).

Finished work is still written as it finishes (a timeout never throws finished work away): an
answer waits for others only while another query of the batch is running, and at most
`LINGER_SECONDS`; then whichever job is waiting writes everything that is ready. Time budget: a
job's record is written within LINGER_SECONDS + one BatchWriteItem (with its retries of
unprocessed items, bounded by `UNPROCESSED_ATTEMPTS` and the batch's deadline) of its answer, all
inside the store reserve (TimeBudget.store_reserve_seconds, 6 s) that a query never eats into.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from shared.budget import Deadline
from shared.store.event_records import Snapshot

LINGER_SECONDS = 0.1  # the longest an answer waits for the batch's other answers
BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem limit
UNPROCESSED_ATTEMPTS = 4  # BatchWriteItem calls per flush while DynamoDB leaves items unprocessed


class SnapshotStore(Protocol):
    def put_snapshots(self, snapshots: list[Snapshot], *, attempts: int, deadline: Deadline | None) -> list[int]: ...


@dataclass
class _Entry:
    snapshot: Snapshot
    done: bool = False
    error: BaseException | None = None


class SnapshotWriter:
    """One per batch. Each job that may produce a snapshot holds a `ticket()` from before its
    query starts until its snapshot is written (or it knows it has none)."""

    def __init__(
        self,
        store: SnapshotStore,
        deadline: Deadline | None = None,
        *,
        workers: int = 1,
        linger: float = LINGER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._workers = max(1, workers)  # the threads the batch's jobs run on
        self._deadline = deadline
        self._linger = linger
        self._clock = clock
        self._ready = threading.Condition()
        self._running = 0  # jobs (queued or running) whose answer may still come
        self._pending: list[_Entry] = []
        self._oldest = 0.0  # when the oldest pending snapshot became ready
        self._flushing = False
        self.batch_writes = 0

    def ticket(self) -> Ticket:
        """Taken when a job is queued: an answer that comes first waits for the jobs still to run."""
        with self._ready:
            self._running += 1
        return Ticket(self)

    def _withdraw(self) -> None:
        with self._ready:
            self._running -= 1
            self._ready.notify_all()

    def _write(self, snapshot: Snapshot) -> None:
        """Blocks until `snapshot` is stored; raises what its write raised. Due when no other answer
        can still come, or every thread waits here (the jobs still queued could not start), or 25
        are ready, or the oldest has waited the linger."""
        entry = _Entry(snapshot)
        with self._ready:
            self._running -= 1
            if not self._pending:
                self._oldest = self._clock()
            self._pending.append(entry)
            self._ready.notify_all()
            while not entry.done:
                waited = self._clock() - self._oldest
                due = (
                    self._running == 0
                    or len(self._pending) >= min(self._workers, BATCH_WRITE_LIMIT)
                    or waited >= self._linger
                )
                if due and not self._flushing and self._pending:
                    self._flush_locked()
                else:
                    self._ready.wait(timeout=max(0.001, self._linger - waited))
        if entry.error is not None:
            raise entry.error

    def _flush_locked(self) -> None:
        """Write up to 25 pending snapshots outside the lock (others keep arriving meanwhile)."""
        taken, self._pending = self._pending[:BATCH_WRITE_LIMIT], self._pending[BATCH_WRITE_LIMIT:]
        self._oldest = self._clock()
        self._flushing = True
        self._ready.release()
        try:
            unwritten = self._store.put_snapshots(
                [e.snapshot for e in taken], attempts=UNPROCESSED_ATTEMPTS, deadline=self._deadline
            )
            failure: Exception | None = None
        except Exception as error:  # noqa: BLE001 - handed to every job of this flush
            unwritten, failure = list(range(len(taken))), error
        finally:
            self._ready.acquire()
        self.batch_writes += 1
        for index, entry in enumerate(taken):
            if index in unwritten:
                entry.error = failure or UnwrittenSnapshotError("DynamoDB left the snapshot unprocessed")
            entry.done = True
        self._flushing = False
        self._ready.notify_all()


class UnwrittenSnapshotError(RuntimeError):
    """DynamoDB kept leaving the snapshot unprocessed (throttling): its events go back to SQS."""


class Ticket:
    """A job's place in the writer: `write` once, or let it go (`close`, or the `with` block)."""

    def __init__(self, writer: SnapshotWriter) -> None:
        self._writer = writer
        self._open = True

    def write(self, snapshot: Snapshot) -> None:
        if not self._open:
            raise RuntimeError("a ticket writes one snapshot")
        self._open = False
        self._writer._write(snapshot)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._writer._withdraw()

    def __enter__(self) -> Ticket:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
