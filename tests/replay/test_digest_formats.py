"""Digests recorded in an older format stay checkable (DESIGN section 9).

Versions and snapshots recorded before digest format 2 carry format-1
digests, in immutable manifests and journal events. A digest names its own
format, so every check computes the same format: verifying the live version,
a rebuild from such a version as its base, restoring such a snapshot, and a
bookkeeping-only batch that carries the digest forward.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from journal.events import LabelUpdate, SnapshotRequest
from pipeline.digest import digest_format, digest_of_path
from pipeline.files import copy_tree_writable
from pipeline.manifest import MANIFEST_NAME
from pipeline.restore import restore_snapshot
from pipeline.snapshots import Snapshotter
from replay.builder import Rebuilder
from replay.sources import StoreVersions
from replay.verify import verify_live
from tests.reliability.reliability_rig import (
    IMAGE,
    World,
    assert_version_complete,
    local_world,
    word_records,
)


def republish_in_format_1(world: World, collection: str, scratch: Path) -> None:
    """Promote the live version's content again under a format-1 digest, as
    the consumer did before format 2."""
    live = world.shared.live_manifest(collection)
    assert live is not None
    work = scratch / "legacy"
    copy_tree_writable(world.shared.live_path(collection), work)
    (work / MANIFEST_NAME).unlink()
    legacy = digest_of_path(work, collection, scratch_dir=scratch, fmt=1)
    manifest = world.shared.publish(
        collection,
        work,
        live,
        applied_seq=live.applied_seq,
        first_seq=None,
        last_seq=None,
        digest=legacy.hexdigest,
        record_count=legacy.count,
        fencing_token=live.fencing_token,
        writer="consumer-before-format-2",
    )
    world.shared.promote(
        collection,
        manifest,
        expected_parent=live.version,
        fencing_token=live.fencing_token,
    )
    shutil.rmtree(work)


def label(word: int, labels: list[str]) -> LabelUpdate:
    return LabelUpdate(
        image_id=IMAGE, receipt_id=1, line_id=1, word_id=word, valid_labels=labels
    )


def verify(world: World, scratch: Path, *, from_versions: bool) -> bool:
    sources = [StoreVersions(world.shared)] if from_versions else []
    report = verify_live(
        "words",
        journal=world.journal,
        shared=world.shared,
        rebuilder=Rebuilder(world.journal, world.objects),
        sources=sources,
        scratch_root=scratch,
    )
    return report.ok


def test_format_1_digests_verify_restore_and_serve_as_bases(tmp_path: Path) -> None:
    world = local_world(tmp_path / "world")
    snapshotter = Snapshotter(world.objects, world.journal, world.shared)
    world.delta("words", word_records(1))
    world.append("words", label(1, ["TAX"]))
    consumer = world.consumer(after_promote=snapshotter.after_promote)
    consumer.catch_up(["words"])
    republish_in_format_1(world, "words", tmp_path)
    legacy = assert_version_complete(world.shared, "words")
    assert digest_format(legacy.digest) == 1

    assert verify(world, tmp_path / "v1", from_versions=False)
    assert verify(world, tmp_path / "v2", from_versions=True)  # format-1 base

    # A batch of bookkeeping only carries the format-1 digest forward, and
    # the snapshot it asks for records it: still the digest of its content.
    world.append("words", SnapshotRequest(reason="test"))
    consumer.catch_up(["words"])
    carried = assert_version_complete(world.shared, "words")
    assert carried.digest == legacy.digest
    restored = restore_snapshot(
        world.objects, "words", tmp_path / "restored", check_digest=True
    )
    assert restored.digest == legacy.digest
    assert verify(world, tmp_path / "v3", from_versions=True)

    # The next batch that changes records records the format in force.
    world.append("words", label(2, ["DATE"]))
    consumer.catch_up(["words"])
    current = assert_version_complete(world.shared, "words")
    assert digest_format(current.digest) == 2
    assert verify(world, tmp_path / "v4", from_versions=True)
    world.close()
