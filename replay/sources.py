"""Where a rebuild starts: the snapshot source contract and its adapters.

A rebuild starts from a *base*, a collection state whose ``applied_seq`` is
known, and applies the journal after it. Bases come from a
:class:`SnapshotSource`:

- :class:`ObjectStoreSnapshots`: the durable snapshots in the object store
  (DESIGN section 7), through the snapshot step's restore, which checks
  every file's sha256 and opens the result with ChromaDB;
- :class:`StoreVersions`: versions published in the shared store, for an
  explicit ``--from VERSION`` (never chosen by ``latest``: a rebuild that
  starts from the consumer's own output cannot check that output);
- :class:`NoSnapshots`: nothing, every rebuild starts empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import structlog

from journal.objectstore import ObjectStore
from pipeline.errors import VersionCorrupt
from pipeline.manifest import Manifest, copy_version
from pipeline.restore import restore_snapshot
from pipeline.snapshot_format import (
    SnapshotError,
    SnapshotManifest,
    list_snapshots,
    read_manifest,
)
from pipeline.store import SharedStore
from replay.errors import BaseNotUsable

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SnapshotInfo:
    """One base a rebuild may start from.

    ``digest`` and ``record_count`` describe the content (DESIGN section 9)
    when the source recorded them; the rebuild checks a restored base
    against them. ``size_bytes`` is what restoring reads.
    """

    version: str
    applied_seq: int
    recorded_at: datetime | None = None
    digest: str | None = None
    record_count: int | None = None
    size_bytes: int | None = None
    origin: str = "snapshot"


class SnapshotSource(Protocol):
    """Lists and restores the bases of a collection."""

    def list(self, collection: str) -> list[SnapshotInfo]:
        """Every complete base of ``collection``, in any order."""
        ...

    def restore(self, collection: str, version: str, dest: Path) -> SnapshotInfo:
        """Write base ``version`` as a ChromaDB directory at ``dest`` (which
        does not exist yet) after checking it; return what it holds."""
        ...


def newest_at_or_before(bases: list[SnapshotInfo], seq: int) -> SnapshotInfo | None:
    """The base with the highest ``applied_seq`` not after ``seq`` (the most
    recently recorded one among equals)."""
    usable = [base for base in bases if base.applied_seq <= seq]
    if not usable:
        return None
    return max(usable, key=lambda base: (base.applied_seq, _sort_time(base)))


def _sort_time(base: SnapshotInfo) -> float:
    return base.recorded_at.timestamp() if base.recorded_at else 0.0


class NoSnapshots:
    """A source with no bases: every rebuild starts from an empty collection."""

    def list(self, collection: str) -> list[SnapshotInfo]:
        """Always empty."""
        return []

    def restore(self, collection: str, version: str, dest: Path) -> SnapshotInfo:
        """Always refused: there is nothing to restore."""
        raise BaseNotUsable(collection, version, "no snapshots are configured")


class StoreVersions:
    """Versions published in the shared store, as bases."""

    def __init__(self, shared: SharedStore) -> None:
        self._shared = shared

    def list(self, collection: str) -> list[SnapshotInfo]:
        """Every published version with a readable manifest."""
        found = []
        for version in self._shared.versions(collection):
            try:
                manifest = self._shared.manifest(collection, version)
            except VersionCorrupt:
                continue  # being collected, or never completed
            found.append(_info_of(manifest))
        return found

    def restore(self, collection: str, version: str, dest: Path) -> SnapshotInfo:
        """Copy the version to ``dest``, checking every file's sha256."""
        source = self._shared.version_path(collection, version)
        try:
            manifest = Manifest.read(source)
        except VersionCorrupt as error:
            raise BaseNotUsable(collection, version, str(error)) from error
        dest.mkdir(parents=True)
        copy_version(source, manifest, dest)
        return _info_of(manifest)


def _info_of(manifest: Manifest) -> SnapshotInfo:
    return SnapshotInfo(
        version=manifest.version,
        applied_seq=manifest.applied_seq,
        recorded_at=manifest.created_at,
        digest=manifest.digest,
        record_count=manifest.record_count,
        size_bytes=manifest.total_bytes,
        origin="version",
    )


class ObjectStoreSnapshots:
    """The durable snapshots in the object store (DESIGN section 7), read and
    restored with :mod:`pipeline.snapshot_format` and :mod:`pipeline.restore`.

    Restoring checks every file's size and sha256 against the snapshot's
    manifest and opens a copy with ChromaDB (count and one query); the
    rebuild then checks the content digest itself.
    """

    def __init__(self, objects: ObjectStore, *, space: str | None = None) -> None:
        self._objects = objects
        self._space = space

    def list(self, collection: str) -> list[SnapshotInfo]:
        """Every complete snapshot of ``collection``."""
        found = []
        for stored in list_snapshots(self._objects, collection):
            if not stored.complete:
                continue  # an upload in progress, or one that crashed
            try:
                snap = read_manifest(self._objects, collection, stored.version)
            except SnapshotError as error:
                # Deleted by retention since it was listed, or unreadable.
                log.warning(
                    "snapshot_unreadable", collection=collection, error=str(error)
                )
                continue
            found.append(_snapshot_info(snap))
        return found

    def restore(self, collection: str, version: str, dest: Path) -> SnapshotInfo:
        """Download and check snapshot ``version`` into ``dest``."""
        snap = restore_snapshot(
            self._objects,
            collection,
            dest,
            version=version,
            space=self._space,
            scratch_dir=dest.parent,
        )
        return _snapshot_info(snap)


def _snapshot_info(snap: SnapshotManifest) -> SnapshotInfo:
    return SnapshotInfo(
        version=snap.version,
        applied_seq=snap.applied_seq,
        recorded_at=snap.created_at,
        digest=snap.digest,
        record_count=snap.record_count,
        size_bytes=snap.total_bytes,
        origin="snapshot" if snap.origin == "consumer" else f"{snap.origin} snapshot",
    )
