"""Several processes appending to one SQLite journal file at once."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from multiprocessing.synchronize import Barrier
from pathlib import Path
from queue import Empty
from typing import Any

from journal.events import NewEvent, SnapshotRequest
from journal.sqlite import SQLiteJournal

WORKERS = 4
JOIN_TIMEOUT_S = 120


def _append_events(
    path: str, worker: int, count: int, barrier: Barrier, out: Any
) -> None:
    """Child process: append ``count`` events one by one; report (seq, id)."""
    with SQLiteJournal(Path(path)) as journal:
        barrier.wait()
        results = [
            journal.append(
                NewEvent(
                    collection="lines",
                    payload=SnapshotRequest(reason=f"{worker}-{i}"),
                )
            )
            for i in range(count)
        ]
    out.put([(result.seq, result.envelope.event_id) for result in results])


def _append_keys(
    path: str, worker: int, keys: list[str], barrier: Barrier, out: Any
) -> None:
    """Child process: append one event per key; report (key, seq, duplicate)."""
    order = keys if worker % 2 == 0 else list(reversed(keys))
    with SQLiteJournal(Path(path)) as journal:
        barrier.wait()
        results = [
            (
                key,
                journal.append(
                    NewEvent(
                        collection="lines",
                        payload=SnapshotRequest(reason=f"{worker}"),
                        idempotency_key=key,
                    )
                ),
            )
            for key in order
        ]
    out.put([(key, result.seq, result.duplicate) for key, result in results])


def _run_workers(target: Any, args: list[tuple[Any, ...]]) -> list[Any]:
    """Start one spawned process per args tuple, released together."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(args))
    out = context.Queue()
    processes = [
        context.Process(target=target, args=(*one, barrier, out)) for one in args
    ]
    for process in processes:
        process.start()
    try:
        reports = [out.get(timeout=JOIN_TIMEOUT_S) for _ in processes]
    except Empty as error:
        raise AssertionError("a worker process did not report") from error
    finally:
        for process in processes:
            process.join(JOIN_TIMEOUT_S)
    assert [process.exitcode for process in processes] == [0] * len(processes)
    return reports


def test_processes_appending_at_once_get_gapless_unique_seqs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    SQLiteJournal(path).close()  # create the schema before the race

    reports = _run_workers(
        _append_events, [(str(path), worker, 250) for worker in range(WORKERS)]
    )

    returned = sorted(seq for report in reports for seq, _ in report)
    assert returned == list(range(1, 1001))
    with SQLiteJournal(path) as journal:
        stored = list(journal.read("lines"))
    assert [envelope.seq for envelope in stored] == list(range(1, 1001))
    assert len({envelope.event_id for envelope in stored}) == 1000
    for report in reports:
        mine = [seq for seq, _ in report]
        assert mine == sorted(mine)  # each process sees its own appends in order


def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "journal.sqlite3"

    reports = _run_workers(
        _append_events, [(str(path), worker, 20) for worker in range(WORKERS)]
    )

    assert sorted(seq for report in reports for seq, _ in report) == list(range(1, 81))


def test_processes_racing_and_retrying_the_same_keys_store_each_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    SQLiteJournal(path).close()
    keys = [f"stream-record-{i}" for i in range(100)]
    args = [(str(path), worker, keys) for worker in range(WORKERS)]

    raced = _run_workers(_append_keys, args)
    retried = _run_workers(_append_keys, args)

    with SQLiteJournal(path) as journal:
        stored = {e.idempotency_key: e.seq for e in journal.read("lines")}
        assert journal.head("lines") == 100
    assert sorted(stored.values()) == list(range(1, 101))
    fresh = Counter(key for report in raced for key, _, dup in report if not dup)
    assert fresh == Counter(keys)  # exactly one process wrote each key
    for report in raced + retried:
        assert all(seq == stored[key] for key, seq, _ in report)
    assert all(dup for report in retried for _, _, dup in report)
