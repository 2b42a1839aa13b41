"""import-legacy: the previous system's snapshot layout becomes the base
snapshot, with the fixture's content digest."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from snapshot_legacy_fixture import (
    LEGACY_VERSION,
    build_legacy_collection,
    upload_legacy,
)
from snapshot_rig import COLLECTION, Rig

from journal.objectstore import ObjectStore
from pipeline.digest import digest_of_path
from pipeline.legacy_import import LegacyImportError, import_legacy
from pipeline.restore import restore_snapshot
from pipeline.snapshot_format import read_pointer
from tests.aws.moto_s3 import s3_store


@pytest.fixture
def legacy(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ObjectStore, str]:
    """The old bucket (moto) holding a legacy snapshot; and its digest."""
    source = s3_store(request, bucket="legacy-receipts-bucket")
    chroma_dir = tmp_path / "legacy-build"
    build_legacy_collection(chroma_dir)
    variant = request.param if hasattr(request, "param") else "archive"
    upload_legacy(source, chroma_dir, variant)
    return source, digest_of_path(chroma_dir, COLLECTION).hexdigest


@pytest.mark.parametrize("legacy", ["archive", "tree"], indirect=True)
def test_import_gives_a_base_snapshot_with_the_fixtures_digest(
    local_rig: Rig, legacy: tuple[ObjectStore, str]
) -> None:
    rig = local_rig
    source, expected = legacy

    result = import_legacy(
        source,
        COLLECTION,
        target=rig.objects,
        journal=rig.journal,
        workdir=rig.tmp / "work",
        space="cosine",
        clock=rig.clock,
    )

    snap = result.manifest
    assert (snap.digest, snap.record_count, snap.applied_seq) == (expected, 30, 0)
    assert snap.origin == "legacy" and not result.already_imported
    assert snap.source == (
        f"{source.url}/{COLLECTION}/snapshot/timestamped/{LEGACY_VERSION}/"
    )
    current = read_pointer(rig.objects, COLLECTION)
    assert current is not None and current.pointer.version == snap.version
    assert [e.payload.version for e in rig.events_of("snapshot_recorded")] == [
        snap.version
    ]
    assert [e.payload.version for e in rig.events_of("latest_moved")] == [snap.version]
    restored = restore_snapshot(
        rig.objects, COLLECTION, rig.tmp / "restored", check_digest=True
    )
    assert restored.digest == expected


def test_import_again_changes_nothing(
    local_rig: Rig, legacy: tuple[ObjectStore, str]
) -> None:
    rig = local_rig
    source, _ = legacy
    first = import_legacy(
        source,
        COLLECTION,
        target=rig.objects,
        journal=rig.journal,
        workdir=rig.tmp / "work",
    )
    head = rig.journal.head(COLLECTION)

    again = import_legacy(
        source,
        COLLECTION,
        target=rig.objects,
        journal=rig.journal,
        workdir=rig.tmp / "work",
    )

    assert again.already_imported and again.manifest == first.manifest
    assert rig.journal.head(COLLECTION) == head


def test_import_into_a_collection_with_snapshots_is_refused(
    local_rig: Rig, legacy: tuple[ObjectStore, str]
) -> None:
    rig = local_rig
    rig.delta(1)
    rig.request()
    rig.consumer().catch_up()

    with pytest.raises(LegacyImportError, match="already has snapshots"):
        import_legacy(
            legacy[0],
            COLLECTION,
            target=rig.objects,
            journal=rig.journal,
            workdir=rig.tmp / "work",
        )


def test_archive_escaping_its_directory_is_refused(
    request: pytest.FixtureRequest, local_rig: Rig
) -> None:
    rig = local_rig
    source = s3_store(request, bucket="legacy-receipts-bucket")
    source.put_bytes(f"{COLLECTION}/snapshot/latest-pointer.txt", b"v1")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        member = tarfile.TarInfo("../../escape.txt")
        member.size = 4
        tar.addfile(member, io.BytesIO(b"evil"))
    key = f"{COLLECTION}/snapshot/timestamped/v1/snapshot.tar.gz"
    source.put_bytes(key, buffer.getvalue())

    with pytest.raises(LegacyImportError, match="path leaves") as caught:
        import_legacy(
            source,
            COLLECTION,
            target=rig.objects,
            journal=rig.journal,
            workdir=rig.tmp / "work",
        )

    assert caught.value.key == key
    assert read_pointer(rig.objects, COLLECTION) is None
    assert not list(rig.tmp.rglob("escape.txt"))


def test_missing_legacy_pointer_is_reported(
    request: pytest.FixtureRequest, local_rig: Rig
) -> None:
    source = s3_store(request, bucket="legacy-receipts-bucket")

    with pytest.raises(LegacyImportError, match="no legacy pointer"):
        import_legacy(
            source,
            COLLECTION,
            target=local_rig.objects,
            journal=local_rig.journal,
            workdir=local_rig.tmp / "work",
        )
