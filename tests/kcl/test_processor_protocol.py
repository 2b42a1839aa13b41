"""The record processor, driven through amazon_kclpy's real message loop.

Each test plays the daemon: it sends initialize / processRecords /
shardEnded / leaseLost / shutdownRequested lines, answers checkpoint
requests (sometimes with an error), and checks what the processor asked to
checkpoint and what the shared store now holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from importlib.util import find_spec

import pytest
from kcl_events import EventPlan
from kcl_protocol import DaemonSide, Record, record_of
from kcl_rig import CONFIG, LocalRig, Monotonic, assert_contiguous, seq_ranges
from structlog.testing import capture_logs

from journal.events import DeltaMerge, Envelope, NewEvent
from pipeline.lease import Lease, LeaseGrant


class AnyString(str):
    """Equal to any string that starts with it."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith(str(self))

    __hash__ = str.__hash__


pytestmark = pytest.mark.skipif(
    find_spec("amazon_kclpy") is None,
    reason="amazon_kclpy is not installed; run scripts/install-kcl.sh",
)

Ownership = Callable[[str], Callable[[str], bool]]


def owns_all(_shard: str) -> Callable[[str], bool]:
    return lambda _collection: True


class Harness:
    """Builds processors over the rig and closes their message loops."""

    def __init__(self, rig: LocalRig) -> None:
        self.rig = rig
        self.monotonic = Monotonic()
        self.sleeps: list[float] = []
        self.daemons: list[DaemonSide] = []

    def start(
        self,
        worker: str = "worker-a",
        *,
        lease: Lease | None = None,
        ownership: Ownership | None = None,
        resume_from: str = "TRIM_HORIZON",
    ) -> DaemonSide:
        from pipeline.kcl_processor import ChromaRecordProcessor, ProcessorOptions

        processor = ChromaRecordProcessor(
            lambda owner: self.rig.consumer(owner, lease),
            ProcessorOptions(worker_id=worker, idle_catch_up_seconds=30),
            journal_collections=self.rig.journal.collections,
            ownership=ownership or (lambda _shard: lambda _c: False),
            clock=self.monotonic,
            sleep=self.sleeps.append,
        )
        daemon = DaemonSide(processor)
        self.daemons.append(daemon)
        assert daemon.initialize(resume_from).checkpoints == []
        return daemon

    def close(self) -> None:
        for daemon in self.daemons:
            daemon.close()


@pytest.fixture
def harness(rig: LocalRig) -> Iterator[Harness]:
    harness = Harness(rig)
    yield harness
    harness.close()


@pytest.fixture
def plan(rig: LocalRig) -> EventPlan:
    return EventPlan(rig.objects, rig.tmp / "build")


def append(
    rig: LocalRig, plan: EventPlan, collection: str, count: int
) -> list[Envelope]:
    return [rig.append(plan.next(collection)) for _ in range(count)]


def records(envelopes: list[Envelope], first_position: int = 1) -> list[Record]:
    return [
        record_of(position, envelope)
        for position, envelope in enumerate(envelopes, start=first_position)
    ]


def rebuild_digest(rig: LocalRig, collection: str) -> str:
    """The digest a fresh local consumer reaches from the same journal."""
    from pipeline.consumer import Consumer
    from pipeline.lease_local import LocalLease
    from pipeline.status_sqlite import SQLiteStatusStore
    from pipeline.store import SharedStore

    fresh = rig.tmp / "rebuild"
    shared = SharedStore(fresh / "chroma")
    status = SQLiteStatusStore(fresh / "status.sqlite3")
    consumer = Consumer(
        rig.journal,
        rig.objects,
        shared,
        fresh / "staging",
        LocalLease(fresh / "leases"),
        status,
        CONFIG,
        owner="rebuild",
    )
    try:
        consumer.catch_up([collection])
    finally:
        consumer.close()
        status.close()
    manifest = shared.live_manifest(collection)
    assert manifest is not None
    return manifest.digest


# -- order, duplicates, gaps ------------------------------------------------------


def test_duplicates_and_reordered_records_apply_each_event_once(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    events = append(rig, plan, "words", 5)
    daemon = harness.start()
    shuffled = [events[2], events[0], events[1], events[1], events[4], events[3]]

    exchange = daemon.process(records(shuffled))

    assert exchange.positions == ["6"]
    assert rig.applied("words") == 5
    assert seq_ranges(rig.chain("words")) == [(1, 5)]
    assert rig.chain("words")[-1].digest == rebuild_digest(rig, "words")


def test_redelivered_batch_changes_nothing_and_checkpoints_again(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    events = append(rig, plan, "lines", 3)
    daemon = harness.start()
    daemon.process(records(events))

    again = daemon.process(records(events, first_position=4))

    assert again.positions == ["6"]
    assert seq_ranges(rig.chain("lines")) == [(1, 3)]


def test_gap_is_filled_from_the_journal(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    events = append(rig, plan, "lines", 6)
    daemon = harness.start()
    delivered = [events[0], events[1], events[4]]  # 3 and 4 never published

    exchange = daemon.process(records(delivered))

    assert exchange.positions == ["3"]
    assert rig.applied("lines") == 5
    daemon.process([record_of(4, events[5])])
    assert_contiguous(rig.chain("lines"), head=6)


def test_undecodable_record_is_passed_over(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    events = append(rig, plan, "lines", 1)
    daemon = harness.start()
    garbage = Record("2", b"not an envelope")

    exchange = daemon.process([record_of(1, events[0]), garbage])

    assert exchange.positions == ["2"]
    assert rig.applied("lines") == 1


# -- a failing collection ------------------------------------------------------


def bad_delta(collection: str) -> NewEvent:
    payload = DeltaMerge(
        key=f"{collection}/deltas/missing/delta.tar.gz", sha256="0" * 64, records=1
    )
    return NewEvent(collection=collection, payload=payload, producer="kcl-test")


def test_failing_collection_holds_the_checkpoint_while_others_apply(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    lines = append(rig, plan, "lines", 3)
    words = append(rig, plan, "words", 1)
    words.append(rig.append(bad_delta("words")))
    words += append(rig, plan, "words", 1)
    daemon = harness.start()
    batch = [lines[0], words[0], lines[1], words[1], lines[2], words[2]]

    exchange = daemon.process(records(batch))

    # Position 4 holds words seq 2, which cannot be applied: the checkpoint
    # stops at position 3 although lines went on to seq 3.
    assert exchange.positions == ["3"]
    assert rig.applied("lines") == 3
    assert rig.applied("words") == 1
    more_lines = append(rig, plan, "lines", 1)
    assert daemon.process(records(more_lines, first_position=7)).positions == []
    assert rig.applied("lines") == 4


# -- checkpoint replies --------------------------------------------------------


def test_throttled_checkpoint_is_retried(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    events = append(rig, plan, "lines", 2)
    daemon = harness.start()

    exchange = daemon.process(records(events), errors=["ThrottlingException"])

    assert exchange.positions == ["2", "2"]
    assert len(harness.sleeps) == 1


def test_checkpoint_after_shutdown_is_not_retried_nor_repeated(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    events = append(rig, plan, "lines", 3)
    daemon = harness.start()

    first = daemon.process(records(events[:2]), errors=["ShutdownException"])
    second = daemon.process(records(events[2:], first_position=3))

    assert first.positions == ["2"]
    assert second.positions == []
    assert rig.applied("lines") == 3


def test_shutdown_requested_checkpoints_what_is_promoted(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    events = append(rig, plan, "lines", 2)
    daemon = harness.start()
    failed = daemon.process(records(events), errors=["ThrottlingException"] * 5)
    assert failed.positions == ["2"] * 5

    exchange = daemon.call({"action": "shutdownRequested"})

    assert exchange.positions == ["2"]


# -- the end of a shard, a lost lease ----------------------------------------------


def test_shard_end_checkpoints_the_end_of_the_shard(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    events = append(rig, plan, "lines", 2)
    daemon = harness.start()
    daemon.process(records(events))

    exchange = daemon.call({"action": "shardEnded"})

    assert exchange.positions == [None]


def test_shard_end_is_checkpointed_even_with_a_blocked_collection(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    words = append(rig, plan, "words", 1)
    words.append(rig.append(bad_delta("words")))
    daemon = harness.start()
    assert daemon.process(records(words)).positions == ["1"]

    with capture_logs() as logs:
        exchange = daemon.call({"action": "shardEnded"})

    assert exchange.positions == [None]
    warnings = [e for e in logs if e["event"] == "kcl_shard_ended_with_pending"]
    assert [e["collections"] for e in warnings] == [["words"]]


def test_lease_lost_stops_without_checkpoint_and_frees_the_collection(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    events = append(rig, plan, "lines", 2)
    daemon = harness.start()
    daemon.process(records(events), errors=["ThrottlingException"] * 5)
    assert rig.lease.current("lines") is not None

    exchange = daemon.call({"action": "leaseLost"})

    assert exchange.positions == []
    assert rig.lease.current("lines") is None


# -- idle catch-up ---------------------------------------------------------------


def test_idle_shard_catches_up_events_whose_publish_failed(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    append(rig, plan, "lines", 3)
    daemon = harness.start(ownership=owns_all)

    daemon.process([])
    assert rig.applied("lines") == 0
    harness.monotonic.advance(31)
    exchange = daemon.process([])

    assert rig.applied("lines") == 3
    assert exchange.positions == []


def test_idle_catch_up_skips_collections_of_other_shards(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    append(rig, plan, "lines", 2)
    daemon = harness.start()

    harness.monotonic.advance(31)
    daemon.process([])

    assert rig.applied("lines") == 0


# -- a zombie after failover ----------------------------------------------------------


class PausingLease(Lease):
    """A lease whose holder pauses right after a successful renewal.

    Models a processor that checked its lease just before publishing, then
    stalled (GC pause, lost network) long enough for the lease to expire and
    a successor to take the shard and the collection, and then went on to
    publish and promote. Once armed, the pause follows the second renewal:
    the consumer renews once when a batch starts and once before publishing.
    """

    def __init__(self, inner: Lease, pause: Callable[[], None]) -> None:
        self._inner = inner
        self._pause: Callable[[], None] | None = pause
        self.armed = False
        self._renewals = 0

    def acquire(self, collection: str, owner: str, ttl: timedelta) -> LeaseGrant | None:
        return self._inner.acquire(collection, owner, ttl)

    def renew(self, grant: LeaseGrant, ttl: timedelta) -> LeaseGrant | None:
        renewed = self._inner.renew(grant, ttl)
        self._renewals += self.armed
        if self._renewals == 2 and self._pause is not None:
            pause, self._pause = self._pause, None
            pause()
        return renewed

    def release(self, grant: LeaseGrant) -> bool:
        return self._inner.release(grant)

    def current(self, collection: str) -> LeaseGrant | None:
        return self._inner.current(collection)


def test_zombie_processor_cannot_promote_over_its_successor(
    rig: LocalRig, harness: Harness, plan: EventPlan
) -> None:
    events = append(rig, plan, "lines", 8)
    successor: list[DaemonSide] = []

    def failover() -> None:
        rig.clock.advance(CONFIG.lease_ttl_seconds + 1)
        daemon_b = harness.start("worker-b", resume_from="3")
        successor.append(daemon_b)
        daemon_b.process(records(events[:6]))

    zombie_lease = PausingLease(rig.lease, failover)
    daemon_a = harness.start("worker-a", lease=zombie_lease)
    assert daemon_a.process(records(events[:3])).positions == ["3"]

    zombie_lease.armed = True
    with capture_logs() as logs:
        zombie = daemon_a.process(records(events[3:7], first_position=4))

    # B promoted 4..6 while A was paused; A's promotion of 4..7 (built on
    # the version B replaced) was refused, and A checkpoints only what B's
    # promotion covers.
    refusals = [e for e in logs if e["event"] == "kcl_collection_refused"]
    assert [e["reason"] for e in refusals] == [AnyString("promotion of lines refused")]
    assert zombie.positions == ["6"]
    chain = rig.chain("lines")
    assert seq_ranges(chain) == [(1, 3), (4, 6)]
    assert [m.fencing_token for m in chain] == [1, 2]
    assert chain[0].writer.startswith("worker-a/")
    assert chain[1].writer.startswith("worker-b/")

    # Still a zombie, A gets seq 7 and 8: the lease is B's now.
    with capture_logs() as logs:
        again = daemon_a.process(records(events[6:], first_position=7))
    refusals = [e for e in logs if e["event"] == "kcl_collection_refused"]
    assert [e["reason"] for e in refusals] == [AnyString("lease on lines is held")]
    assert again.positions == []
    assert rig.applied("lines") == 6

    successor[0].process(records(events[6:], first_position=7))
    chain = rig.chain("lines")
    assert_contiguous(chain, head=8)
    assert {m.fencing_token for m in chain[1:]} == {2}
