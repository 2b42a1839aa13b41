"""Rebuilding from the snapshots the consumer took (DESIGN section 7)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from replay_rig import WORDS, Rig, append_history, close_rig, copy_rig, make_rig

from journal.objectstore import ObjectStore
from pipeline.snapshot_format import SnapshotCorrupt, file_key
from pipeline.snapshots import Snapshotter
from replay.plan import EMPTY, Target
from replay.rebuild import RebuildResult, run_rebuild
from replay.sources import ObjectStoreSnapshots


@pytest.fixture(scope="module")
def snapshot_template(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, datetime]:
    """The history applied by a consumer that snapshots on request: the
    request at seq 7 is promoted with the batch 7..9, so the snapshot holds
    seq 9; recording it appends seqs 18 and 19."""
    rig = make_rig(tmp_path_factory.mktemp("snapshotted") / "rig")
    snapshotter = Snapshotter(rig.objects, rig.journal, rig.shared, clock=rig.clock)
    append_history(rig)
    rig.consumer(after_promote=snapshotter.after_promote).catch_up()
    close_rig(rig)
    return rig.tmp, rig.clock.now


@pytest.fixture
def snapshotted(
    tmp_path: Path, snapshot_template: tuple[Path, datetime]
) -> Iterator[Rig]:
    """A private copy of the snapshot template."""
    rig = copy_rig(snapshot_template, tmp_path / "rig")
    yield rig
    close_rig(rig)


def rebuild_words(
    rig: Rig, target: Target, name: str, base: str = "latest"
) -> RebuildResult:
    return run_rebuild(
        rig.plan(target, sources=[ObjectStoreSnapshots(rig.objects)], base=base),
        rig.rebuilder(),
        rig.tmp / name,
        scratch_root=rig.tmp / "scratch",
    )


def test_the_consumer_left_one_snapshot_and_recorded_it(snapshotted: Rig) -> None:
    snapshots = ObjectStoreSnapshots(snapshotted.objects).list(WORDS)

    assert [snap.applied_seq for snap in snapshots] == [9]
    assert snapshotted.journal.head(WORDS) == 19
    assert sorted(snapshotted.versions_by_seq()) == [3, 6, 9, 12, 15, 18, 19]


@pytest.mark.parametrize("seq", [12, 18, 19])
def test_rebuild_from_the_snapshot_equals_the_consumers_version(
    snapshotted: Rig, seq: int
) -> None:
    result = rebuild_words(snapshotted, Target(to_seq=seq), f"snap-{seq}")

    assert result.plan.base is not None and result.plan.base.applied_seq == 9
    assert result.built.events_applied == seq - 9
    assert result.built.digest.hexdigest == snapshotted.versions_by_seq()[seq].digest


def test_rebuild_from_the_snapshot_equals_a_rebuild_from_empty(
    snapshotted: Rig,
) -> None:
    from_snapshot = rebuild_words(snapshotted, Target(), "from-snapshot")
    from_empty = rebuild_words(snapshotted, Target(), "from-empty", base=EMPTY)

    assert from_snapshot.plan.base is not None
    assert from_empty.plan.base is None
    assert from_snapshot.built.digest == from_empty.built.digest
    assert from_snapshot.manifest is not None
    assert from_snapshot.manifest.parent == from_snapshot.plan.base.version


def test_a_target_before_the_snapshot_starts_empty(snapshotted: Rig) -> None:
    result = rebuild_words(snapshotted, Target(to_seq=8), "early")

    assert result.plan.base is None
    assert result.built.events_applied == 8


def test_a_corrupt_snapshot_is_refused_and_leaves_nothing(snapshotted: Rig) -> None:
    rig = snapshotted
    snap = ObjectStoreSnapshots(rig.objects).list(WORDS)[0]
    _corrupt(rig.objects, file_key(WORDS, snap.version, "chroma.sqlite3"))

    with pytest.raises(SnapshotCorrupt, match="sha256"):
        rebuild_words(rig, Target(), "out")

    assert not (rig.tmp / "out").exists()
    assert not (rig.tmp / ".out.partial").exists()


def _corrupt(objects: ObjectStore, key: str) -> None:
    data = bytearray(objects.get_bytes(key))
    data[len(data) // 2] ^= 0xFF
    objects.put_bytes(key, bytes(data))
