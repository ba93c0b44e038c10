"""The batch's snapshot writer (events/snapshots.py): answers share BatchWriteItems, and an answer
waits for the others only while a query is running, at most the linger."""

from __future__ import annotations

import threading
import time
from typing import Any

from events.snapshots import BATCH_WRITE_LIMIT, SnapshotWriter, UnwrittenSnapshotError
from shared.budget import Deadline
from shared.store.event_records import Snapshot


def snapshot(n: int) -> Snapshot:
    return Snapshot("ORDER", "inst", f"order-{n}", {"id": n}, 1, f"event-{n}", 1)


class RecordingStore:
    def __init__(self, unwritten: list[int] | None = None, error: Exception | None = None) -> None:
        self.calls: list[list[str]] = []
        self.written_at: dict[str, float] = {}
        self._unwritten = unwritten or []
        self._error = error

    def put_snapshots(self, snapshots: list[Snapshot], *, attempts: int, deadline: Deadline | None) -> list[int]:
        self.calls.append([s.resource_id for s in snapshots])
        if self._error is not None:
            raise self._error
        for s in snapshots:
            self.written_at[s.resource_id] = time.monotonic()
        return self._unwritten


def job(writer: SnapshotWriter, n: int, answer: threading.Event, errors: list[Any]) -> threading.Thread:
    def run() -> None:
        with writer.ticket() as ticket:
            answer.wait(timeout=10)
            try:
                ticket.write(snapshot(n))
            except Exception as error:  # noqa: BLE001 - asserted by the test
                errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_answers_of_running_queries_share_one_batch_write() -> None:
    store = RecordingStore()
    writer = SnapshotWriter(store, linger=5.0, workers=64)
    answers = [threading.Event() for _ in range(3)]
    threads = [job(writer, n, answers[n], []) for n in range(3)]
    time.sleep(0.05)  # every query is running
    for answer in answers:
        answer.set()
        time.sleep(0.02)
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(store.calls[0]) == ["order-0", "order-1", "order-2"] and len(store.calls) == 1


def test_a_ready_answer_waits_at_most_the_linger_for_a_slow_query() -> None:
    store = RecordingStore()
    writer = SnapshotWriter(store, linger=0.1, workers=2)
    fast, slow = threading.Event(), threading.Event()
    threads = [job(writer, 0, fast, []), job(writer, 1, slow, [])]
    time.sleep(0.05)
    fast.set()
    deadline = time.monotonic() + 5
    while "order-0" not in store.written_at and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "order-0" in store.written_at and not slow.is_set()  # written while the slow query still runs
    slow.set()
    for thread in threads:
        thread.join(timeout=10)
    assert store.calls == [["order-0"], ["order-1"]]


def test_a_job_that_ends_without_a_snapshot_releases_the_wait() -> None:
    store = RecordingStore()
    writer = SnapshotWriter(store, linger=30.0, workers=2)  # only the withdrawal can end the wait in time
    answer, errors = threading.Event(), []
    other = writer.ticket()
    thread = job(writer, 0, answer, errors)
    answer.set()
    time.sleep(0.05)
    assert store.calls == []  # waiting for the other running query
    other.close()  # its query failed: no snapshot
    thread.join(timeout=5)
    assert not thread.is_alive() and store.calls == [["order-0"]] and errors == []


def test_more_ready_answers_than_one_request_holds_are_split() -> None:
    store = RecordingStore()
    writer = SnapshotWriter(store, linger=5.0, workers=64)
    go = threading.Event()
    threads = [job(writer, n, go, []) for n in range(BATCH_WRITE_LIMIT + 5)]
    time.sleep(0.1)
    go.set()
    for thread in threads:
        thread.join(timeout=10)
    assert all(len(call) <= BATCH_WRITE_LIMIT for call in store.calls) and len(store.calls) >= 2
    assert sum(len(call) for call in store.calls) == BATCH_WRITE_LIMIT + 5


def test_a_snapshot_left_unwritten_fails_only_its_own_job() -> None:
    store = RecordingStore(unwritten=[1])  # the second of the request
    writer = SnapshotWriter(store, linger=5.0, workers=64)
    go = threading.Event()
    errors: list[list[Any]] = [[], []]
    threads = [job(writer, n, go, errors[n]) for n in range(2)]
    time.sleep(0.05)
    go.set()
    for thread in threads:
        thread.join(timeout=10)
    [request] = store.calls
    unwritten = int(request[1].removeprefix("order-"))
    assert [type(e) for e in errors[unwritten]] == [UnwrittenSnapshotError] and errors[1 - unwritten] == []


def test_a_failed_request_fails_every_job_it_carried() -> None:
    store = RecordingStore(error=RuntimeError("throttled"))
    writer = SnapshotWriter(store, linger=5.0, workers=64)
    go = threading.Event()
    errors: list[list[Any]] = [[], []]
    threads = [job(writer, n, go, errors[n]) for n in range(2)]
    time.sleep(0.05)
    go.set()
    for thread in threads:
        thread.join(timeout=10)
    assert len(store.calls) == 1 and all([str(e) for e in errs] == ["throttled"] for errs in errors)


def test_when_every_thread_waits_the_jobs_still_queued_are_not_waited_for() -> None:
    """One worker thread: the queued jobs cannot start while it waits, so its answer is written now."""
    store = RecordingStore()
    writer = SnapshotWriter(store, linger=30.0, workers=1)
    queued = [writer.ticket() for _ in range(3)]  # noqa: F841 - held by jobs not yet started
    answer, errors = threading.Event(), []
    thread = job(writer, 0, answer, errors)
    answer.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and store.calls == [["order-0"]] and errors == []
