"""Where a rebuild starts: the snapshot source contract and its adapters.

A rebuild starts from a *base*, a collection state whose ``applied_seq`` is
known, and applies the journal after it. Bases come from a
:class:`SnapshotSource`:

- :class:`ObjectStoreSnapshots`: the durable snapshots in the object store
  (DESIGN section 7), through the snapshot module's restore, which checks
  every file's sha256 and opens the result with ChromaDB;
- :class:`StoreVersions`: versions published in the shared store, for an
  explicit ``--from VERSION`` (never chosen by ``latest``: a rebuild that
  starts from the consumer's own output cannot check that output);
- :class:`NoSnapshots`: nothing, every rebuild starts empty.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import structlog

from journal.objectstore import ObjectStore
from pipeline.errors import VersionCorrupt
from pipeline.manifest import Manifest, copy_version
from pipeline.store import SharedStore
from replay.errors import BaseNotUsable, SnapshotSourceUnavailable

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


#: Modules the snapshot step provides; :class:`ObjectStoreSnapshots` needs both.
_SNAPSHOT_MODULES = ("pipeline.snapshots", "pipeline.restore")


def snapshot_module_installed() -> bool:
    """True when the snapshot step's modules can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in _SNAPSHOT_MODULES)


class ObjectStoreSnapshots:
    """The durable snapshots in the object store (DESIGN section 7).

    A thin adapter over :mod:`pipeline.snapshots` and :mod:`pipeline.restore`;
    when those are not installed, :meth:`list` finds nothing (so ``latest``
    falls back to an empty base) and :meth:`restore` raises
    :class:`SnapshotSourceUnavailable`.
    """

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects

    def list(self, collection: str) -> list[SnapshotInfo]:
        """Every complete snapshot of ``collection``."""
        if not snapshot_module_installed():
            log.debug("snapshot_module_missing", collection=collection)
            return []
        # Imported by name: the module is optional (see the class docstring).
        snapshots = importlib.import_module("pipeline.snapshots")
        listed: list[Any] = snapshots.list_snapshots(self._objects, collection)
        return [_snapshot_info(entry) for entry in listed]

    def restore(self, collection: str, version: str, dest: Path) -> SnapshotInfo:
        """Download, check and open snapshot ``version`` at ``dest``."""
        if not snapshot_module_installed():
            raise SnapshotSourceUnavailable(
                f"{collection}: cannot restore snapshot {version}: the snapshot "
                f"modules ({', '.join(_SNAPSHOT_MODULES)}) are not installed"
            )
        restore = importlib.import_module("pipeline.restore")
        manifest: Any = restore.restore_snapshot(
            self._objects, collection, version, dest
        )
        return _snapshot_info(manifest)


def _snapshot_info(entry: Any) -> SnapshotInfo:
    """Read the fields replay needs from a snapshot record of the snapshot
    module (a manifest or a listing entry), whichever names it uses."""
    recorded = getattr(entry, "recorded_at", None) or getattr(entry, "created_at", None)
    size = getattr(entry, "size_bytes", None) or getattr(entry, "total_bytes", None)
    return SnapshotInfo(
        version=str(entry.version),
        applied_seq=int(entry.applied_seq),
        recorded_at=recorded,
        digest=getattr(entry, "digest", None),
        record_count=getattr(entry, "record_count", None),
        size_bytes=size,
    )
