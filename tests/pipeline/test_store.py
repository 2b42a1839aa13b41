"""The shared store: publish, promote (compare and swap), garbage collection."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from pipeline_rig import T0, ManualClock

from pipeline import faults
from pipeline.errors import NoLiveVersion, PromotionRefused
from pipeline.files import FileHasher, sha256_file
from pipeline.manifest import MANIFEST_NAME, Manifest
from pipeline.store import SharedStore, new_version_id, version_time

INDEX = "0e2021e6-b493-4d89-9661-2f159405f193/data_level0.bin"
SQLITE = "chroma.sqlite3"
DIGEST = "0" * 64


def make_work(path: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def publish(
    store: SharedStore,
    work: Path,
    parent: Manifest | None,
    *,
    token: int = 1,
    seq: int = 1,
    hasher: FileHasher | None = None,
) -> Manifest:
    return store.publish(
        "lines",
        work,
        parent,
        applied_seq=seq,
        first_seq=seq,
        last_seq=seq,
        digest=DIGEST,
        record_count=0,
        fencing_token=token,
        writer="test",
        hasher=hasher,
    )


def publish_live(
    store: SharedStore, work: Path, *, token: int = 1, seq: int = 1
) -> Manifest:
    parent = store.live_manifest("lines")
    manifest = publish(store, work, parent, token=token, seq=seq)
    store.promote(
        "lines",
        manifest,
        expected_parent=parent.version if parent else None,
        fencing_token=token,
    )
    return manifest


@pytest.fixture
def shared(tmp_path: Path, clock: ManualClock) -> SharedStore:
    return SharedStore(tmp_path / "chroma", clock=clock)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return make_work(tmp_path / "work", {SQLITE: b"sqlite v1", INDEX: b"index v1"})


def test_version_ids_sort_by_time_and_do_not_collide() -> None:
    same_moment = {new_version_id(T0) for _ in range(1000)}
    later = new_version_id(T0.replace(microsecond=2000))

    assert len(same_moment) == 1000
    assert all(version < later for version in same_moment)
    assert version_time(later) == T0.replace(microsecond=2000)
    assert version_time("not-a-version") is None


def test_publish_records_every_file_and_makes_the_version_read_only(
    shared: SharedStore, work: Path
) -> None:
    manifest = publish(shared, work, None)

    path = shared.version_path("lines", manifest.version)
    assert manifest.files[INDEX].sha256 == hashlib.sha256(b"index v1").hexdigest()
    assert manifest.files[SQLITE].size == len(b"sqlite v1")
    assert Manifest.read(path) == manifest
    for entry in [path, *path.rglob("*")]:
        assert entry.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0
    assert shared.versions("lines") == [manifest.version]
    assert not list(path.parent.glob(".tmp-*"))


def test_publish_does_not_make_the_version_live(
    shared: SharedStore, work: Path
) -> None:
    publish(shared, work, None)

    assert shared.live_version("lines") is None
    with pytest.raises(NoLiveVersion):
        shared.live_path("lines")


def test_publish_links_unchanged_files_and_copies_changed_ones(
    shared: SharedStore, work: Path
) -> None:
    first = publish(shared, work, None)
    (work / SQLITE).write_bytes(b"sqlite v2")

    second = publish(shared, work, first, seq=2)

    old = shared.version_path("lines", first.version)
    new = shared.version_path("lines", second.version)
    assert (new / INDEX).stat().st_ino == (old / INDEX).stat().st_ino
    assert (new / SQLITE).stat().st_ino != (old / SQLITE).stat().st_ino
    assert (new / SQLITE).read_bytes() == b"sqlite v2"
    assert (old / SQLITE).read_bytes() == b"sqlite v1"
    assert second.parent == first.version


def test_publish_trusts_the_stat_cache_only_for_files_older_than_the_margin(
    shared: SharedStore, work: Path
) -> None:
    hasher = FileHasher(work)
    first = publish(shared, work, None, hasher=hasher)
    old_enough = 1_000_000_000  # 2001: long before it was hashed
    os.utime(work / INDEX, ns=(old_enough, old_enough))
    hasher.remember(Path(INDEX), (work / INDEX).stat(), sha256_file(work / INDEX))

    assert hasher.cached(Path(INDEX)) is not None
    assert hasher.cached(Path(SQLITE)) is None  # hashed in the same instant

    (work / INDEX).write_bytes(b"index v2")  # same size, new mtime
    assert hasher.cached(Path(INDEX)) is None
    second = publish(shared, work, first, hasher=hasher, seq=2)
    assert second.files[INDEX].sha256 == hashlib.sha256(b"index v2").hexdigest()


def test_publish_writes_the_manifest_after_every_other_file(
    shared: SharedStore, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, tuple[bool, int]] = {}

    def spy(name: str) -> None:
        staging = next((shared.root / ".versions" / "lines").glob(".tmp-*"))
        files = [p for p in staging.rglob("*") if p.is_file()]
        seen[name] = ((staging / MANIFEST_NAME).exists(), len(files))

    monkeypatch.setattr(faults, "point", spy)
    publish(shared, work, None)

    assert seen["files_published"] == (False, 2)
    assert seen["manifest_written"] == (True, 3)


def test_a_failed_publish_leaves_no_directory_behind(
    shared: SharedStore, work: Path
) -> None:
    (work / "link").symlink_to(work / SQLITE)

    with pytest.raises(ValueError, match="not a regular file"):
        publish(shared, work, None)

    versions_dir = shared.root / ".versions" / "lines"
    assert list(versions_dir.iterdir()) == []


def test_promote_swaps_a_relative_link_to_the_new_version(
    shared: SharedStore, work: Path
) -> None:
    first = publish_live(shared, work)
    second = publish_live(shared, work, seq=2)

    link = shared.root / "lines"
    assert not link.readlink().is_absolute()
    assert link.resolve() == shared.version_path("lines", second.version)
    assert shared.live_version("lines") == second.version
    assert shared.live_manifest("lines") == second
    assert shared.live_path("lines") == shared.version_path("lines", second.version)
    assert first.version in shared.versions("lines")


def test_promote_refuses_when_the_live_version_is_not_the_expected_parent(
    shared: SharedStore, work: Path
) -> None:
    first = publish_live(shared, work)
    stale = publish(shared, work, None, seq=2)

    with pytest.raises(PromotionRefused, match="expected None"):
        shared.promote("lines", stale, expected_parent=None, fencing_token=1)

    assert shared.live_version("lines") == first.version


def test_promote_refuses_a_writer_whose_lease_was_taken_over(
    shared: SharedStore, work: Path
) -> None:
    successor = publish_live(shared, work, token=8)
    zombie = publish(shared, work, successor, token=7, seq=2)

    with pytest.raises(PromotionRefused, match="fencing token 8"):
        shared.promote(
            "lines", zombie, expected_parent=successor.version, fencing_token=7
        )

    assert shared.live_version("lines") == successor.version


def test_promote_accepts_the_same_token_for_successive_batches(
    shared: SharedStore, work: Path
) -> None:
    publish_live(shared, work, token=3)
    second = publish_live(shared, work, token=3, seq=2)

    assert shared.live_version("lines") == second.version


def test_promote_refuses_an_unpublished_manifest(
    shared: SharedStore, work: Path
) -> None:
    manifest = publish(shared, work, None)
    ghost = manifest.model_copy(update={"version": new_version_id(T0)})

    with pytest.raises(PromotionRefused, match="not published"):
        shared.promote("lines", ghost, expected_parent=None, fencing_token=1)


def test_gc_keeps_the_live_version_the_newest_and_the_young(
    shared: SharedStore, work: Path, clock: ManualClock
) -> None:
    made = []
    for seq in range(1, 6):
        made.append(publish_live(shared, work, seq=seq).version)
        clock.advance(60)
    # made[0] is 5 min old ... made[4] is 1 min old; grace 150 s spares the
    # two youngest, keep=1 spares only the newest.
    removed = shared.gc("lines", keep=1, grace_seconds=150)

    assert removed == made[:3]
    assert shared.versions("lines") == made[3:]


def test_gc_never_removes_the_live_version(
    shared: SharedStore, work: Path, clock: ManualClock
) -> None:
    first = publish_live(shared, work)
    for seq in (2, 3):
        publish(shared, work, first, seq=seq)  # newer, never promoted
    clock.advance(3600)

    shared.gc("lines", keep=0, grace_seconds=0)

    assert shared.versions("lines") == [first.version]
    assert shared.live_version("lines") == first.version


def test_gc_removes_crashed_publishes_after_the_grace_period(
    shared: SharedStore, work: Path, clock: ManualClock
) -> None:
    publish_live(shared, work)
    versions_dir = shared.root / ".versions" / "lines"
    crashed = versions_dir / f".tmp-{new_version_id(clock())}"
    (crashed / "sub").mkdir(parents=True)
    (crashed / "sub").chmod(0o555)

    assert shared.gc("lines", keep=1, grace_seconds=60) == []
    clock.advance(61)
    assert shared.gc("lines", keep=1, grace_seconds=60) == [crashed.name]
    assert not crashed.exists()


def test_remove_version_refuses_the_live_one(shared: SharedStore, work: Path) -> None:
    live = publish_live(shared, work)
    orphan = publish(shared, work, live, seq=2)

    shared.remove_version("lines", orphan.version)
    with pytest.raises(Exception, match="is live"):
        shared.remove_version("lines", live.version)

    assert shared.versions("lines") == [live.version]


def test_collections_lists_those_with_versions(shared: SharedStore, work: Path) -> None:
    assert shared.collections() == []
    publish_live(shared, work)
    assert shared.collections() == ["lines"]


def test_gc_keeps_everything_when_there_are_fewer_versions_than_keep(
    shared: SharedStore, work: Path, clock: ManualClock
) -> None:
    made = []
    for seq in (1, 2):
        made.append(publish_live(shared, work, seq=seq).version)
        clock.advance(1)
    clock.advance(3600)

    assert shared.gc("lines", keep=3, grace_seconds=0) == []
    assert shared.versions("lines") == made
