"""The steps of taking a snapshot, shared by the consumer's snapshotter
and the legacy import: upload (files, then the manifest), move the pointer
by compare and swap, and record the snapshot in the journal."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import structlog

from journal.base import AppendResult, Clock, Journal
from journal.events import LatestMoved, NewEvent, SnapshotRecorded
from journal.objectstore import CasOutcome, ObjectStore
from pipeline import faults
from pipeline.errors import VersionCorrupt
from pipeline.files import Hashed, sha256_file
from pipeline.snapshot_format import (
    PointerState,
    SnapshotManifest,
    SnapshotPointer,
    UploadMarker,
    file_key,
    manifest_key,
    marker_key,
    pointer_key,
    snapshot_prefix,
)

log = structlog.get_logger(__name__)


def upload_snapshot(
    objects: ObjectStore,
    source: Path,
    snap: SnapshotManifest,
    *,
    clock: Clock,
    verify: bool = True,
) -> int:
    """Upload the files ``snap`` lists from the directory ``source``, then its
    manifest; return the bytes uploaded. With ``verify`` each file is first
    checked against its sha256 and size (:class:`VersionCorrupt` if not)."""
    started = time.monotonic()
    collection, version = snap.collection, snap.version
    marker = UploadMarker(started_at=clock())
    objects.put_bytes(marker_key(collection, version), marker.to_bytes())
    for name, entry in sorted(snap.files.items()):
        path = source / name
        expected = Hashed(entry.sha256, entry.size)
        if verify and (found := sha256_file(path)) != expected:
            raise VersionCorrupt(
                f"{path} has sha256 {found.sha256} ({found.size} bytes), but the "
                f"manifest of {collection} {version} says {entry.sha256} "
                f"({entry.size} bytes); not uploaded"
            )
        objects.put_file(file_key(collection, version, name), path)
        faults.point("snapshot_file_uploaded")
    objects.put_bytes(manifest_key(collection, version), snap.to_bytes())
    objects.delete(marker_key(collection, version))
    seconds = time.monotonic() - started
    log.info(
        "snapshot_uploaded",
        collection=collection,
        version=version,
        applied_seq=snap.applied_seq,
        files=len(snap.files),
        bytes=snap.total_bytes,
        seconds=round(seconds, 4),
        mb_per_s=round(snap.total_bytes / 1e6 / seconds, 2) if seconds else None,
        store=objects.url,
    )
    return snap.total_bytes


def move_pointer(
    objects: ObjectStore,
    snap: SnapshotManifest,
    current: PointerState | None,
    moved_at: datetime,
) -> CasOutcome:
    """Point ``latest.json`` at ``snap`` if it still holds ``current`` (if it
    is still absent, when ``current`` is None)."""
    pointer = SnapshotPointer.of(snap, moved_at)
    outcome = objects.put_if(
        pointer_key(snap.collection),
        pointer.to_bytes(),
        etag=current.etag if current else None,
    )
    if outcome is CasOutcome.WRITTEN:
        log.info(
            "snapshot_pointer_moved",
            collection=snap.collection,
            version=snap.version,
            applied_seq=snap.applied_seq,
            previous=current.pointer.version if current else None,
        )
    return outcome


def snapshot_location(objects: ObjectStore, snap: SnapshotManifest) -> str:
    """The URL of a snapshot's prefix, as recorded in the journal."""
    return f"{objects.url}/{snapshot_prefix(snap.collection, snap.version)}"


def record_snapshot(
    journal: Journal,
    snap: SnapshotManifest,
    *,
    location: str,
    moved: bool,
    producer: str,
) -> list[AppendResult]:
    """Append ``snapshot_recorded`` (and ``latest_moved``) for ``snap`` in one
    atomic batch, keyed by its version so that repeating it appends nothing."""
    events = [
        NewEvent(
            collection=snap.collection,
            payload=SnapshotRecorded(
                version=snap.version,
                applied_seq=snap.applied_seq,
                location=location,
                digest=snap.digest,
            ),
            idempotency_key=f"snapshot_recorded:{snap.version}",
            producer=producer,
        )
    ]
    if moved:
        events.append(
            NewEvent(
                collection=snap.collection,
                payload=LatestMoved(
                    version=snap.version,
                    previous_version=snap.parent,
                    applied_seq=snap.applied_seq,
                ),
                idempotency_key=f"latest_moved:{snap.version}",
                producer=producer,
            )
        )
    results = journal.append_batch(events)
    fresh = [r.seq for r in results if not r.duplicate]
    if fresh:
        log.info(
            "snapshot_recorded",
            collection=snap.collection,
            version=snap.version,
            seqs=fresh,
        )
    return results
