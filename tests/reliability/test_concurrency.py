"""Concurrency: appenders racing on both journal backends, and two writers
racing to promote the same collection.

Already covered elsewhere, and not repeated here: SQLite processes
appending single events and racing on the same idempotency keys
(``tests/journal/test_sqlite_concurrency.py``), DynamoDB threads appending
distinct keyed events and retrying them (``tests/aws``). Added here: batch
appends racing on both backends (a batch must land on consecutive seqs),
threads racing on the *same* keys on DynamoDB, and two consumers promoting
the same collection at the same moment, round after round.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Barrier as ProcessBarrier
from pathlib import Path
from queue import Empty
from typing import Any

import pytest

from journal.base import Journal
from journal.events import NewEvent, SnapshotRequest
from journal.sqlite import SQLiteJournal
from pipeline.errors import PromotionRefused
from pipeline.manifest import Manifest
from pipeline.store import SharedStore
from tests.reliability.reliability_rig import (
    DeltaPool,
    GrantEveryone,
    World,
    assert_applied_once,
    assert_version_complete,
    config,
    manifest_chain,
    random_payload,
    rebuild_digest,
)

COLLECTION = "lines"
JOIN_TIMEOUT_S = 120


def batch_of(writer: int, index: int, size: int, *, keyed: bool) -> list[NewEvent]:
    """``size`` events; keyed ones can be retried without a second copy."""
    return [
        NewEvent(
            collection=COLLECTION,
            payload=SnapshotRequest(reason=f"{writer}/{index}/{k}"),
            idempotency_key=f"w{writer}-b{index}-e{k}" if keyed else None,
        )
        for k in range(size)
    ]


def check_batches(
    journal: Journal, reports: list[list[list[tuple[int, bool]]]]
) -> None:
    """Every batch landed on consecutive seqs, all seqs 1..n once, and
    retried keyed batches returned the first seqs as duplicates."""
    stored = list(journal.read(COLLECTION))
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    fresh = [
        seq for report in reports for batch in report for seq, dup in batch if not dup
    ]
    assert sorted(fresh) == list(range(1, len(stored) + 1))
    for report in reports:
        for batch in report:
            seqs = [seq for seq, _ in batch]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    keys = Counter(e.idempotency_key for e in stored if e.idempotency_key)
    assert all(count == 1 for count in keys.values())


def append_batches(journal: Journal, writer: int) -> list[list[tuple[int, bool]]]:
    """Batches of 1-4 events, every other one keyed and appended twice (a
    producer retry after a timeout)."""
    rng = random.Random(writer)
    results: list[list[tuple[int, bool]]] = []
    for index in range(12):
        keyed = index % 2 == 0
        events = batch_of(writer, index, rng.randint(1, 4), keyed=keyed)
        first = journal.append_batch(events)
        results.append([(r.seq, r.duplicate) for r in first])
        if keyed:
            again = journal.append_batch(events)
            assert [(r.seq, r.duplicate) for r in again] == [
                (r.seq, True) for r in first
            ]
    return results


# -- SQLite, processes ---------------------------------------------------------


def _sqlite_writer(path: str, writer: int, barrier: ProcessBarrier, out: Any) -> None:
    with SQLiteJournal(Path(path)) as journal:
        barrier.wait()
        out.put(append_batches(journal, writer))


def test_sqlite_batch_appends_from_processes_land_whole_and_gapless(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    SQLiteJournal(path).close()
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(3), context.Queue()
    processes = [
        context.Process(target=_sqlite_writer, args=(str(path), w, barrier, out))
        for w in range(3)
    ]
    for process in processes:
        process.start()
    try:
        reports = [out.get(timeout=JOIN_TIMEOUT_S) for _ in processes]
    except Empty as error:
        raise AssertionError("a writer process did not report") from error
    finally:
        for process in processes:
            process.join(JOIN_TIMEOUT_S)
    assert [p.exitcode for p in processes] == [0, 0, 0]

    with SQLiteJournal(path) as journal:
        check_batches(journal, reports)


# -- DynamoDB, threads ---------------------------------------------------------


@pytest.fixture
def dynamodb_journal(request: pytest.FixtureRequest) -> Journal:
    from journal.dynamodb import DynamoDBJournal
    from tests.aws.moto_backends import JOURNAL_TABLE, SerializedClient, moto_aws

    aws = moto_aws(request)
    client: Any = SerializedClient(aws.dynamodb)
    return DynamoDBJournal(client, JOURNAL_TABLE, max_race_retries=200)


@pytest.mark.slow
def test_dynamodb_batch_appends_from_threads_land_whole_and_gapless(
    dynamodb_journal: Journal,
) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        reports = list(
            pool.map(lambda w: append_batches(dynamodb_journal, w), range(4))
        )

    check_batches(dynamodb_journal, reports)


@pytest.mark.slow
def test_dynamodb_threads_racing_on_the_same_keys_store_each_once(
    dynamodb_journal: Journal,
) -> None:
    keys = [f"stream-record-{i}" for i in range(30)]
    barrier = threading.Barrier(4)

    def writer(index: int) -> list[tuple[str, int, bool]]:
        order = keys if index % 2 == 0 else keys[::-1]
        barrier.wait()
        out = []
        for key in order:
            event = NewEvent(
                collection=COLLECTION,
                payload=SnapshotRequest(reason=str(index)),
                idempotency_key=key,
            )
            result = dynamodb_journal.append(event)
            out.append((key, result.seq, result.duplicate))
        return out

    with ThreadPoolExecutor(max_workers=4) as pool:
        reports = list(pool.map(writer, range(4)))

    stored = {e.idempotency_key: e.seq for e in dynamodb_journal.read(COLLECTION)}
    assert sorted(stored.values()) == list(range(1, len(keys) + 1))
    assert dynamodb_journal.head(COLLECTION) == len(keys)
    fresh = Counter(key for report in reports for key, _, dup in report if not dup)
    assert fresh == Counter(keys)  # exactly one thread wrote each key
    assert all(seq == stored[key] for report in reports for key, seq, _ in report)


# -- two writers promoting the same collection ---------------------------------


class RacingStore(SharedStore):
    """A shared store whose promotions wait for the other writer's, so that
    both compare-and-swap the same parent at the same moment, and wait again
    until both are decided, so that the loser's retry starts from the
    winner's version (a loser refused by its older fencing token could
    otherwise retry the same round before the winner's swap, meet the
    winner's next round at the barrier, and leave one writer waiting alone
    at the end)."""

    def __init__(self, root: Path, barrier: threading.Barrier) -> None:
        super().__init__(root)
        self._barrier = barrier
        self.attempts = 0

    def promote(
        self,
        collection: str,
        manifest: Manifest,
        *,
        expected_parent: str | None,
        fencing_token: int,
    ) -> None:
        self.attempts += 1
        self._barrier.wait()
        try:
            super().promote(
                collection,
                manifest,
                expected_parent=expected_parent,
                fencing_token=fencing_token,
            )
        finally:
            self._barrier.wait()


@pytest.mark.slow
def test_two_consumers_racing_each_promotion_one_wins_and_nothing_is_lost(
    world: World, tmp_path: Path
) -> None:
    pool = DeltaPool(world.objects, tmp_path / "pool", COLLECTION)
    rng = random.Random(5)
    for _ in range(16):
        world.append(COLLECTION, random_payload(rng, pool))
    # Generous: on a loaded 2-core machine one side can lag far behind.
    barrier = threading.Barrier(2, timeout=300)
    # The lease lets both in (a split brain); only the store decides.
    lease = GrantEveryone()
    racing = config(
        group_commit_max_events=3, versions_keep=10_000, versions_grace_seconds=1e9
    )
    stores = [RacingStore(world.shared.root, barrier) for _ in range(2)]
    consumers = [
        world.consumer(f"writer-{i}", lease=lease, config=racing) for i in range(2)
    ]
    for consumer, store in zip(consumers, stores, strict=True):
        consumer.shared = store
        consumer._runner._shared = store

    def drive(index: int) -> int:
        refused = 0
        while True:
            try:
                consumers[index].catch_up([COLLECTION])
            except PromotionRefused:
                refused += 1
                continue
            return refused

    with ThreadPoolExecutor(max_workers=2) as threads:
        refusals = list(threads.map(drive, range(2)))

    versions = world.shared.versions(COLLECTION)
    parents = [world.shared.manifest(COLLECTION, v).parent for v in versions]
    assert len(set(parents)) == len(parents)  # one winner per parent: no fork
    attempts = sum(store.attempts for store in stores)
    assert attempts == 2 * len(versions)  # both writers tried every swap...
    assert sum(refusals) == len(versions)  # ...and exactly one lost each
    head = world.journal.head(COLLECTION)
    assert_applied_once(manifest_chain(world.shared, COLLECTION), head)
    live = assert_version_complete(world.shared, COLLECTION)
    expected = rebuild_digest(world.journal, world.objects, tmp_path, COLLECTION)
    assert live.digest == expected
