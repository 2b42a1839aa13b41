"""Taking snapshots through the consumer: coalescing, the pointer CAS, the
journal records, and recovery after failures."""

from __future__ import annotations

from typing import Any

from snapshot_doubles import FailingJournal, WrappedStore
from snapshot_rig import COLLECTION, Rig
from structlog.testing import capture_logs

from journal.events import LatestMoved, SnapshotRecorded
from journal.objectstore import CasOutcome
from pipeline.snapshot_format import (
    SnapshotPointer,
    list_snapshots,
    pointer_key,
    read_manifest,
    read_pointer,
)
from pipeline.snapshots import SnapshotOutcome, Snapshotter


def complete_versions(rig: Rig) -> list[str]:
    return [s.version for s in list_snapshots(rig.objects, COLLECTION) if s.complete]


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


def test_two_requests_in_one_batch_give_one_snapshot_recorded_once(rig: Rig) -> None:
    rig.delta(1)
    rig.request("first")
    rig.request("second")

    outcomes = rig.consumer().catch_up()

    taken = outcomes[0]
    assert (taken.first_seq, taken.last_seq, taken.snapshot_requested) == (1, 3, True)
    assert complete_versions(rig) == [taken.version]
    current = read_pointer(rig.objects, COLLECTION)
    assert current is not None
    assert (current.pointer.version, current.pointer.applied_seq) == (taken.version, 3)
    recorded = rig.events_of("snapshot_recorded")
    moved = rig.events_of("latest_moved")
    assert [e.payload for e in recorded] == [
        SnapshotRecorded(
            version=taken.version,
            applied_seq=3,
            location=f"{rig.objects.url}/words/snapshots/{taken.version}/",
            digest=current.pointer.digest,
        )
    ]
    assert [e.payload for e in moved] == [
        LatestMoved(version=taken.version, previous_version=None, applied_seq=3)
    ]
    # The two bookkeeping events were applied and started no snapshot.
    live = rig.shared.live_manifest(COLLECTION)
    assert live is not None and live.applied_seq == rig.journal.head(COLLECTION) == 5
    assert len(outcomes) == 2 and not outcomes[1].snapshot_requested


def test_snapshot_manifest_lists_the_versions_files_and_digest(rig: Rig) -> None:
    rig.delta(1)
    rig.request()
    (taken, _) = rig.consumer().catch_up()

    version = rig.shared.manifest(COLLECTION, taken.version)
    snap = read_manifest(rig.objects, COLLECTION, taken.version)

    assert snap.files == version.files
    assert (snap.digest, snap.record_count) == (version.digest, version.record_count)
    assert (snap.applied_seq, snap.parent, snap.origin) == (2, None, "consumer")
    stored = {
        info.key.rpartition(f"{taken.version}/")[2]: info.size
        for info in rig.objects.list(f"words/snapshots/{taken.version}/")
    }
    assert stored.pop("MANIFEST.json") > 0
    assert stored == {name: entry.size for name, entry in snap.files.items()}


def test_request_without_changes_since_last_snapshot_is_skipped_and_logged(
    rig: Rig,
) -> None:
    rig.delta(1)
    rig.request()
    consumer = rig.consumer()
    (first, _) = consumer.catch_up()
    rig.request("nothing changed")

    with capture_logs() as logs:
        consumer.catch_up()

    assert complete_versions(rig) == [first.version]
    (skipped,) = events(logs, "snapshot_skipped")
    assert skipped["reason"] == "unchanged"
    assert skipped["latest"] == first.version
    assert len(rig.events_of("snapshot_recorded")) == 1


def test_request_after_a_change_snapshots_with_the_previous_as_parent(
    rig: Rig,
) -> None:
    rig.delta(1)
    rig.request()
    consumer = rig.consumer()
    (first, _) = consumer.catch_up()
    rig.delta(2, seed=2)
    rig.request()

    with capture_logs() as logs:
        (second, _) = consumer.catch_up()

    assert complete_versions(rig) == [first.version, second.version]
    assert read_manifest(rig.objects, COLLECTION, second.version).parent == (
        first.version
    )
    (uploaded,) = events(logs, "snapshot_uploaded")
    assert uploaded["version"] == second.version and uploaded["bytes"] > 0
    (moved,) = events(logs, "snapshot_pointer_moved")
    assert moved["previous"] == first.version
    assert [e.payload.previous_version for e in rig.events_of("latest_moved")] == [
        None,
        first.version,
    ]


def test_competing_pointer_write_wins_and_the_loser_is_logged(rig: Rig) -> None:
    rig.delta(1)
    rig.request()
    racing = WrappedStore(rig.objects)
    snapshotter = Snapshotter(racing, rig.journal, rig.shared, clock=rig.clock)
    consumer = rig.consumer(snapshotter)
    (first, _) = consumer.catch_up()
    competitor = SnapshotPointer(
        collection=COLLECTION,
        version="20991231T000000000Z-COMPETITOR00000",
        applied_seq=10_000,
        digest="0" * 64,
        record_count=0,
        moved_at=rig.clock(),
    )

    def compete(key: str) -> None:
        # Between this writer's read and its conditional write.
        if key == pointer_key(COLLECTION):
            racing.after_read = None
            seen = rig.objects.read_versioned(key)
            assert seen is not None
            outcome = rig.objects.put_if(key, competitor.to_bytes(), etag=seen.etag)
            assert outcome is CasOutcome.WRITTEN

    rig.delta(2, seed=2)
    rig.request()
    racing.after_read = compete
    with capture_logs() as logs:
        (second, _) = consumer.catch_up()

    current = read_pointer(rig.objects, COLLECTION)
    assert current is not None and current.pointer == competitor
    (conflict,) = events(logs, "snapshot_pointer_conflict")
    assert conflict["log_level"] == "warning"
    assert conflict["version"] == second.version
    assert (conflict["expected"], conflict["latest"]) == (
        first.version,
        competitor.version,
    )
    # The loser's snapshot is complete and recorded; the pointer move is not.
    assert second.version in complete_versions(rig)
    assert [e.payload.version for e in rig.events_of("snapshot_recorded")] == [
        first.version,
        second.version,
    ]
    assert [e.payload.version for e in rig.events_of("latest_moved")] == [first.version]


def test_pointer_never_moves_back_to_an_older_version(local_rig: Rig) -> None:
    rig = local_rig
    rig.delta(1)
    consumer = rig.consumer()
    (older,) = consumer.catch_up()
    older_manifest = rig.shared.manifest(COLLECTION, older.version)
    rig.delta(2, seed=2)
    rig.request()
    (newer, _) = consumer.catch_up()
    snapshotter = rig.snapshotter()

    result = snapshotter.snapshot(older_manifest)

    assert result.outcome is SnapshotOutcome.SUPERSEDED
    assert complete_versions(rig) == [newer.version]


def test_snapshot_missed_by_a_crash_is_taken_with_the_next_batch(
    local_rig: Rig,
) -> None:
    rig = local_rig
    rig.delta(1)
    rig.request()
    # A consumer that "crashed" after promoting: no snapshot was taken.
    rig.consumer(snapshots=False).catch_up()
    rig.consumers.pop().close()
    assert complete_versions(rig) == []
    rig.delta(2, seed=2)

    (batch, _) = rig.consumer().catch_up()

    assert complete_versions(rig) == [batch.version]
    assert len(rig.events_of("snapshot_recorded")) == 1


def test_journal_records_lost_to_a_crash_are_appended_once_later(
    local_rig: Rig,
) -> None:
    rig = local_rig
    rig.delta(1)
    rig.request()
    broken = FailingJournal(rig.journal)
    snapshotter = Snapshotter(rig.objects, broken, rig.shared, clock=rig.clock)
    with capture_logs() as logs:
        (taken,) = rig.consumer(snapshotter).catch_up()
    assert events(logs, "after_promote_failed")
    assert read_pointer(rig.objects, COLLECTION) is not None
    assert rig.events_of("snapshot_recorded") == []
    rig.consumers.pop().close()
    rig.delta(2, seed=2)

    # The next process looks once and appends what the crash lost.
    consumer = rig.consumer()
    consumer.catch_up()
    consumer.catch_up()
    rig.snapshotter().after_promote(rig.shared.live_manifest(COLLECTION), [])

    assert [e.payload.version for e in rig.events_of("snapshot_recorded")] == [
        taken.version
    ]
    assert [e.payload.version for e in rig.events_of("latest_moved")] == [taken.version]


def test_retrying_a_version_appends_nothing_twice(local_rig: Rig) -> None:
    rig = local_rig
    rig.delta(1)
    rig.request()
    (taken, _) = rig.consumer().catch_up()
    head = rig.journal.head(COLLECTION)

    again = rig.snapshotter().snapshot(rig.shared.manifest(COLLECTION, taken.version))

    assert again.outcome is SnapshotOutcome.ALREADY_TAKEN
    assert rig.journal.head(COLLECTION) == head
