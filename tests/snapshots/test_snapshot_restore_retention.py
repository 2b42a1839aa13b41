"""Restoring snapshots (checked before use) and retention, including
uploads interrupted before their manifest."""

from __future__ import annotations

import pytest
from snapshot_doubles import WrappedStore
from snapshot_rig import COLLECTION, Rig
from structlog.testing import capture_logs

from journal.objectstore import CasOutcome
from pipeline.consumer import Consumer
from pipeline.digest import digest_of_path
from pipeline.restore import restore_snapshot
from pipeline.snapshot_format import (
    SnapshotCorrupt,
    SnapshotNotFound,
    SnapshotPointer,
    file_key,
    list_snapshots,
    pointer_key,
    read_manifest,
    read_pointer,
)
from pipeline.snapshots import SnapshotConfig, Snapshotter

GRACE = 600.0


def take_snapshots(rig: Rig, count: int, consumer: Consumer) -> list[str]:
    """``count`` batches, each a change and a snapshot request."""
    versions = []
    for _ in range(count):
        receipt = len(rig.events_of("delta_merge")) + 1
        rig.delta(receipt, words=3, seed=receipt)
        rig.request()
        versions.append(consumer.catch_up()[0].version)
    return versions


def stored(rig: Rig) -> dict[str, bool]:
    return {s.version: s.complete for s in list_snapshots(rig.objects, COLLECTION)}


# -- restore --------------------------------------------------------------------


def test_restore_gives_the_live_content_byte_for_byte(rig: Rig) -> None:
    rig.delta(1)
    rig.request()
    (taken, _) = rig.consumer().catch_up()
    dest = rig.tmp / "restored"

    snap = restore_snapshot(
        rig.objects, COLLECTION, dest, space="cosine", check_digest=True
    )

    assert snap.version == taken.version
    for name, entry in snap.files.items():
        assert (dest / name).stat().st_size == entry.size
    assert digest_of_path(dest, COLLECTION).hexdigest == snap.digest
    assert sorted(p.name for p in dest.parent.glob(".restore-*")) == []


@pytest.mark.parametrize("damage", ["one_byte_changed", "truncated"])
def test_restore_of_a_damaged_file_fails_naming_its_key(rig: Rig, damage: str) -> None:
    rig.delta(1)
    rig.request()
    (taken, _) = rig.consumer().catch_up()
    snap = read_manifest(rig.objects, COLLECTION, taken.version)
    name = max(snap.files, key=lambda n: snap.files[n].size)
    key = file_key(COLLECTION, taken.version, name)
    data = bytearray(rig.objects.get_bytes(key))
    if damage == "one_byte_changed":
        data[len(data) // 2] ^= 0x01
    else:
        del data[-100:]
    rig.objects.put_bytes(key, bytes(data))
    dest = rig.tmp / "restored"

    with pytest.raises(SnapshotCorrupt) as caught:
        restore_snapshot(rig.objects, COLLECTION, dest)

    assert caught.value.key == key
    assert key in str(caught.value)
    assert not dest.exists()
    assert list(rig.tmp.glob(".restore-*")) == []


def test_restore_refuses_a_target_that_holds_files(local_rig: Rig) -> None:
    rig = local_rig
    rig.delta(1)
    rig.request()
    rig.consumer().catch_up()
    dest = rig.tmp / "restored"
    dest.mkdir()
    (dest / "precious").write_text("keep me")

    with pytest.raises(FileExistsError):
        restore_snapshot(rig.objects, COLLECTION, dest)

    assert (dest / "precious").read_text() == "keep me"


def test_restore_without_any_snapshot_says_so(local_rig: Rig) -> None:
    with pytest.raises(SnapshotNotFound, match=r"no latest\.json"):
        restore_snapshot(local_rig.objects, COLLECTION, local_rig.tmp / "x")


# -- interrupted uploads --------------------------------------------------------


def test_interrupted_upload_is_invisible_and_cleaned_up_after_the_grace(
    rig: Rig,
) -> None:
    flaky = WrappedStore(rig.objects)
    snapshotter = Snapshotter(
        flaky,
        rig.journal,
        rig.shared,
        config=SnapshotConfig(keep=2, grace_seconds=GRACE),
        clock=rig.clock,
    )
    consumer = rig.consumer(snapshotter)
    (first,) = take_snapshots(rig, 1, consumer)
    flaky.put_files_left = 2  # the third file "crashes" the upload
    with capture_logs() as logs:
        (broken,) = take_snapshots(rig, 1, consumer)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == [
        "after_promote_failed"
    ]
    flaky.put_files_left = None
    # The next batch retries the owed snapshot, with the newer version.
    (second,) = take_snapshots(rig, 1, consumer)

    # Invisible: not restorable, and not counted by retention (keep=2 keeps
    # both complete ones while the young incomplete one stays).
    assert stored(rig) == {first: True, broken: False, second: True}
    with pytest.raises(SnapshotNotFound):
        restore_snapshot(rig.objects, COLLECTION, rig.tmp / "r", version=broken)

    rig.clock.advance(GRACE - 1)
    assert snapshotter.prune(COLLECTION) == []
    rig.clock.advance(1)
    assert snapshotter.prune(COLLECTION) == [broken]
    assert stored(rig) == {first: True, second: True}


# -- retention ------------------------------------------------------------------


def test_retention_keeps_the_newest_three_of_six(rig: Rig) -> None:
    consumer = rig.consumer(rig.snapshotter(keep=3, grace_seconds=GRACE))

    versions = take_snapshots(rig, 6, consumer)

    assert stored(rig) == dict.fromkeys(versions[3:], True)
    current = read_pointer(rig.objects, COLLECTION)
    assert current is not None and current.pointer.version == versions[-1]


def test_retention_never_deletes_the_pointers_target(local_rig: Rig) -> None:
    rig = local_rig
    versions = take_snapshots(rig, 6, rig.consumer(rig.snapshotter(keep=10)))
    # An operator points latest back at the second snapshot.
    current = read_pointer(rig.objects, COLLECTION)
    assert current is not None
    older = read_manifest(rig.objects, COLLECTION, versions[1])
    rollback = SnapshotPointer.of(older, rig.clock())
    assert (
        rig.objects.put_if(
            pointer_key(COLLECTION), rollback.to_bytes(), etag=current.etag
        )
        is CasOutcome.WRITTEN
    )

    removed = rig.snapshotter(keep=3).prune(COLLECTION)

    assert removed == [versions[0], versions[2]]
    assert stored(rig) == dict.fromkeys([versions[1], *versions[3:]], True)


def test_interrupted_deletion_leaves_no_manifest_behind(local_rig: Rig) -> None:
    rig = local_rig
    versions = take_snapshots(rig, 2, rig.consumer(rig.snapshotter(keep=10)))
    # A retention run that stopped right after deleting a manifest.
    rig.objects.delete(f"words/snapshots/{versions[0]}/MANIFEST.json")

    assert stored(rig) == {versions[0]: False, versions[1]: True}
    rig.clock.advance(GRACE)
    assert rig.snapshotter(keep=10, grace_seconds=GRACE).prune(COLLECTION) == [
        versions[0]
    ]
