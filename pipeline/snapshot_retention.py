"""Snapshot retention: keep the newest K complete snapshots and the pointer's.

::

    complete (manifest)     newest K by version id, plus the pointer's target: kept
                            older ones: deleted, manifest first
    incomplete (none)       upload started < grace ago: kept (still being written)
                            older: deleted (a crashed upload)

Incomplete snapshots do not count towards K. A complete snapshot loses its
manifest before its files, so a deletion cut short leaves an incomplete
snapshot, which a later run removes; a reader never sees half a snapshot
with a manifest. Version ids sort by creation time (``pipeline.store``), so
"newest" is the largest id.

The age of an incomplete snapshot is taken from its ``UPLOADING.json``
marker, or from its version id when the marker is missing; a prefix whose
name is not a version id and has no marker is left alone and logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from journal.objectstore import ObjectStore
from pipeline.snapshot_format import (
    SNAPSHOT_MANIFEST,
    StoredSnapshot,
    list_snapshots,
    read_marker,
    read_pointer,
)
from pipeline.store import version_time

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Retention:
    """How many complete snapshots to keep, and how long an incomplete one
    may be in progress before it counts as crashed."""

    keep: int
    grace_seconds: float

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise ValueError("retention must keep at least one snapshot")
        if self.grace_seconds < 0:
            raise ValueError("the grace period cannot be negative")


def prune_snapshots(
    objects: ObjectStore, collection: str, retention: Retention, now: datetime
) -> list[str]:
    """Delete what :class:`Retention` does not keep; return the versions
    removed (complete and incomplete), oldest first."""
    stored = list_snapshots(objects, collection)
    current = read_pointer(objects, collection)
    target = current.pointer.version if current else None
    complete = [s for s in stored if s.complete]
    kept = {s.version for s in complete[-retention.keep :]} | {target}
    doomed = [s for s in complete if s.version not in kept]
    grace = timedelta(seconds=retention.grace_seconds)
    doomed += [
        s
        for s in stored
        if not s.complete
        and s.version != target
        and _crashed(objects, collection, s, now, grace)
    ]
    for snapshot in doomed:
        _delete(objects, snapshot)
    removed = sorted(s.version for s in doomed)
    if removed:
        log.info(
            "snapshots_removed",
            collection=collection,
            removed=removed,
            kept=sorted(v for v in kept if v is not None),
        )
    return removed


def _crashed(
    objects: ObjectStore,
    collection: str,
    snapshot: StoredSnapshot,
    now: datetime,
    grace: timedelta,
) -> bool:
    """True when an incomplete snapshot's upload began at least ``grace``
    ago (so it is not still being written)."""
    marker = read_marker(objects, collection, snapshot.version)
    started = marker.started_at if marker else version_time(snapshot.version)
    if started is None:
        log.warning(
            "snapshot_prefix_unknown", collection=collection, prefix=snapshot.version
        )
        return False
    return now - started >= grace


def _delete(objects: ObjectStore, snapshot: StoredSnapshot) -> None:
    """Manifest first: from then on the snapshot no longer exists."""
    first = [i for i in snapshot.objects if i.key.endswith(f"/{SNAPSHOT_MANIFEST}")]
    rest = [i for i in snapshot.objects if i not in first]
    for info in first + rest:
        objects.delete(info.key)
