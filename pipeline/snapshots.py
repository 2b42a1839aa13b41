"""Taking snapshots of promoted versions (DESIGN section 7).

The consumer calls :meth:`Snapshotter.after_promote` after every promoted
batch. When a snapshot is due it runs::

    read latest.json (+ETag) ─▶ coalesce ─▶ UPLOADING.json ─▶ files
      ─▶ MANIFEST.json ─▶ latest.json by CAS ─▶ journal ─▶ retention

- **Source**: the promoted version's directory in the shared store, by its
  real path. It is immutable and never opened with ChromaDB here (opening
  writes to it); each file is checked against the version manifest first.
- **Coalescing**: one snapshot per batch, however many requests it holds;
  none when the pointer already covers every record-changing event up to
  this version (requests and bookkeeping change no records).
- **Pointer**: moved with ``If-Match`` on the ETag read (``If-None-Match``
  for the first), never backwards. A lost race leaves the winner's pointer
  and is logged as ``snapshot_pointer_conflict``.
- **Journal**: ``snapshot_recorded`` (and ``latest_moved`` when the pointer
  moved) in one atomic append, with idempotency keys derived from the
  version, so a retry after a crash appends nothing twice. The consumer
  later applies them as bookkeeping; only ``snapshot_request`` makes a
  snapshot due, so they start no snapshot of their own.

When is a snapshot due? A ``snapshot_request`` in the batch; an earlier
attempt for the collection that failed in this process (retried with the
next batch); and, once per collection per process, a request the journal
holds after the pointer's ``applied_seq`` (a crash between promotion and
snapshot), for which the journal range since the last snapshot is read.
That first look also re-appends the pointer's journal records, which are
duplicates unless a crash lost them.

Known limits: the upload runs inside the consumer's loop, so the next batch
(of every collection this consumer serves) waits for it; the demo's
``words`` (10.6 MB) took 0.2-1 s against moto. The lease is not renewed
during an upload; a writer whose lease lapsed meanwhile can still upload,
but the pointer CAS and the never-backwards rule keep it from doing harm.
Recovery after a crash waits for the collection's next promoted batch, so
an idle collection's missed request waits with it.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from journal.base import AppendResult, Clock, Journal, utc_now
from journal.events import Envelope
from journal.objectstore import CasOutcome, ObjectStore
from pipeline import faults
from pipeline.manifest import Manifest
from pipeline.runner import RECORD_TYPES
from pipeline.snapshot_format import (
    PointerState,
    SnapshotManifest,
    SnapshotNotFound,
    SnapshotPointer,
    read_manifest,
    read_pointer,
)
from pipeline.snapshot_retention import Retention, prune_snapshots
from pipeline.snapshot_steps import (
    move_pointer,
    record_snapshot,
    snapshot_location,
    upload_snapshot,
)
from pipeline.store import SharedStore

if TYPE_CHECKING:
    from chroma_journal.settings import Settings

log = structlog.get_logger(__name__)

SNAPSHOT_REQUEST = "snapshot_request"


class SnapshotOutcome(enum.Enum):
    """What :meth:`Snapshotter.snapshot` did."""

    TAKEN = "taken"  # uploaded, pointer moved
    POINTER_CONFLICT = "pointer_conflict"  # uploaded, another writer moved it
    ALREADY_TAKEN = "already_taken"  # the pointer names this version already
    UNCHANGED = "unchanged"  # no record changed since the pointer's snapshot
    SUPERSEDED = "superseded"  # the pointer names a newer snapshot


@dataclass(frozen=True)
class SnapshotResult:
    """One snapshot attempt."""

    collection: str
    version: str
    applied_seq: int
    outcome: SnapshotOutcome
    bytes_uploaded: int = 0
    seconds: float = 0.0
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class SnapshotConfig:
    """Retention and checks of the snapshot step.

    ``grace_seconds`` is how long an upload without a manifest is taken to
    be still in progress; it must exceed the longest upload.
    """

    keep: int = 5
    grace_seconds: float = 3600.0
    verify_files: bool = True
    producer: str = "snapshotter"

    @property
    def retention(self) -> Retention:
        """The retention rule these settings describe."""
        return Retention(keep=self.keep, grace_seconds=self.grace_seconds)

    @classmethod
    def from_settings(cls, settings: Settings) -> SnapshotConfig:
        """The snapshot part of the settings."""
        return cls(
            keep=settings.snapshot_keep, grace_seconds=settings.snapshot_grace_seconds
        )


class Snapshotter:
    """Uploads promoted versions as snapshots and records them."""

    def __init__(
        self,
        objects: ObjectStore,
        journal: Journal,
        shared: SharedStore,
        *,
        config: SnapshotConfig | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._objects = objects
        self._journal = journal
        self._shared = shared
        self._config = config or SnapshotConfig()
        self._clock = clock
        self._looked: set[str] = set()
        self._owed: set[str] = set()

    # -- the consumer's hook ----------------------------------------------------

    def after_promote(self, manifest: Manifest, events: Sequence[Envelope]) -> None:
        """Snapshot ``manifest``'s version when one is due (module docstring).

        Raises on failure (the consumer logs it); the collection then stays
        due, and the next promoted batch tries again.
        """
        collection = manifest.collection
        requested = any(e.payload.type == SNAPSHOT_REQUEST for e in events)
        if not (requested or collection in self._owed or self._first_look(manifest)):
            return
        self._owed.add(collection)
        self.snapshot(manifest)
        self._owed.discard(collection)
        self._looked.add(collection)  # the pointer now covers this version

    def _first_look(self, manifest: Manifest) -> bool:
        """Once per collection: recover what a crash may have left undone."""
        collection = manifest.collection
        if collection in self._looked:
            return False
        current = read_pointer(self._objects, collection)
        if current is not None:
            self._record_target(current)
        after = current.pointer.applied_seq if current else 0
        due = self._requested_since(collection, after, manifest.applied_seq)
        self._looked.add(collection)
        return due

    def _record_target(self, current: PointerState) -> None:
        """Append the pointer target's journal records (duplicates, unless a
        crash came between moving the pointer and appending them)."""
        latest = current.pointer
        try:
            snap = read_manifest(self._objects, latest.collection, latest.version)
        except SnapshotNotFound:
            log.warning(
                "snapshot_pointer_dangling",
                collection=latest.collection,
                version=latest.version,
            )
            return
        self._record(snap, moved=True)

    # -- one snapshot -----------------------------------------------------------

    def snapshot(self, manifest: Manifest) -> SnapshotResult:
        """Snapshot the published version ``manifest`` describes, unless the
        pointer already covers it; see :class:`SnapshotOutcome`."""
        started = time.monotonic()
        current = read_pointer(self._objects, manifest.collection)
        skipped = self._coalesce(manifest, current)
        if skipped is not None:
            return skipped
        snap, uploaded = self._upload(manifest, current)
        moved = self._move_pointer(snap, current)
        self._record(snap, moved=moved)
        removed = self.prune(manifest.collection)
        return SnapshotResult(
            collection=manifest.collection,
            version=manifest.version,
            applied_seq=manifest.applied_seq,
            outcome=SnapshotOutcome.TAKEN
            if moved
            else SnapshotOutcome.POINTER_CONFLICT,
            bytes_uploaded=uploaded,
            seconds=time.monotonic() - started,
            removed=tuple(removed),
        )

    def prune(self, collection: str) -> list[str]:
        """Apply retention to ``collection``'s snapshots."""
        return prune_snapshots(
            self._objects, collection, self._config.retention, self._clock()
        )

    def _coalesce(
        self, manifest: Manifest, current: PointerState | None
    ) -> SnapshotResult | None:
        """A result when no snapshot is to be taken, else None."""
        if current is None:
            return None
        latest = current.pointer
        if latest.version == manifest.version:
            snap = read_manifest(self._objects, manifest.collection, latest.version)
            self._record(snap, moved=True)  # in case a crash came before it
            return self._skipped(manifest, latest, SnapshotOutcome.ALREADY_TAKEN)
        if latest.applied_seq >= manifest.applied_seq:
            return self._skipped(manifest, latest, SnapshotOutcome.SUPERSEDED)
        if not self._changed_since(
            manifest.collection, latest.applied_seq, manifest.applied_seq
        ):
            return self._skipped(manifest, latest, SnapshotOutcome.UNCHANGED)
        return None

    def _skipped(
        self, manifest: Manifest, latest: SnapshotPointer, outcome: SnapshotOutcome
    ) -> SnapshotResult:
        log.info(
            "snapshot_skipped",
            collection=manifest.collection,
            version=manifest.version,
            applied_seq=manifest.applied_seq,
            reason=outcome.value,
            latest=latest.version,
            latest_applied_seq=latest.applied_seq,
        )
        return SnapshotResult(
            manifest.collection, manifest.version, manifest.applied_seq, outcome
        )

    # -- steps ------------------------------------------------------------------

    def _upload(
        self, manifest: Manifest, current: PointerState | None
    ) -> tuple[SnapshotManifest, int]:
        """Upload the version unless a complete snapshot of it exists (an
        earlier attempt that stopped after its manifest)."""
        try:
            return read_manifest(
                self._objects, manifest.collection, manifest.version
            ), 0
        except SnapshotNotFound:
            pass
        source = self._shared.version_path(manifest.collection, manifest.version)
        snap = SnapshotManifest(
            collection=manifest.collection,
            version=manifest.version,
            applied_seq=manifest.applied_seq,
            parent=current.pointer.version if current else None,
            files=manifest.files,
            digest=manifest.digest,
            record_count=manifest.record_count,
            created_at=self._clock(),
        )
        verify = self._config.verify_files
        uploaded = upload_snapshot(
            self._objects, source.resolve(), snap, clock=self._clock, verify=verify
        )
        return snap, uploaded

    def _move_pointer(
        self, snap: SnapshotManifest, current: PointerState | None
    ) -> bool:
        """Compare and swap ``latest.json``; False when another writer won."""
        previous = current.pointer.version if current else None
        outcome = move_pointer(self._objects, snap, current, self._clock())
        faults.point("snapshot_pointer_written")
        if outcome is CasOutcome.WRITTEN:
            return True
        now = read_pointer(self._objects, snap.collection)
        log.warning(
            "snapshot_pointer_conflict",
            collection=snap.collection,
            version=snap.version,
            applied_seq=snap.applied_seq,
            expected=previous,
            latest=now.pointer.version if now else None,
        )
        return False

    def _record(self, snap: SnapshotManifest, *, moved: bool) -> list[AppendResult]:
        return record_snapshot(
            self._journal,
            snap,
            location=snapshot_location(self._objects, snap),
            moved=moved,
            producer=self._config.producer,
        )

    # -- the journal range since the last snapshot ------------------------------

    def _changed_since(self, collection: str, after: int, upto: int) -> bool:
        """True when an event in ``(after, upto]`` changes records."""
        return any(
            e.payload.type in RECORD_TYPES
            for e in self._journal.read(collection, after=after, upto=upto)
        )

    def _requested_since(self, collection: str, after: int, upto: int) -> bool:
        """True when a snapshot request in ``(after, upto]`` is not covered."""
        return any(
            e.payload.type == SNAPSHOT_REQUEST
            for e in self._journal.read(collection, after=after, upto=upto)
        )
