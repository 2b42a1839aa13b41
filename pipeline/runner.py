"""One batch, end to end: stage, apply, digest, publish, promote.

::

    ensure working copy ─▶ mark dirty ─▶ open ─▶ apply e1..en ─▶ digest ─▶ close
        ─▶ compact SQLite ─▶ fence (renew lease) ─▶ publish ─▶ promote (CAS)
        ─▶ mark clean

Nothing in the shared store changes before ``promote``; any failure before
it throws the working copy away, so the next attempt starts again from the
live version. The fencing token written into the manifest is the one the
lease had just before publishing::

    this writer  fence(t=7) ── publish ── promote(expected=V5, t=7)
    other writer               [lease expired] acquire(t=8) ── promote(V5, t=8)

Whichever promotes second finds the live version is no longer V5 and is
refused; a writer still carrying t=7 after t=8 was promoted is refused by
the token check even if it somehow saw the right parent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from journal.events import Envelope
from journal.objectstore import ObjectStore
from pipeline import faults
from pipeline.applier import EventApplier
from pipeline.apply import ApplyContext, ApplyResult, KnownIds
from pipeline.chroma import ChromaCollection, open_collection
from pipeline.compaction import compact
from pipeline.config import ConsumerConfig
from pipeline.digest import Digest, RecordHashes
from pipeline.errors import PromotionRefused
from pipeline.lease import LeaseGrant
from pipeline.manifest import Manifest, new_bytes
from pipeline.store import SharedStore
from pipeline.workcopy import WorkingCopy

log = structlog.get_logger(__name__)

#: Kinds that change records; a batch without any is not opened with ChromaDB.
RECORD_TYPES = frozenset(
    {"delta_merge", "metadata_update", "label_update", "records_delete"}
)


@dataclass(frozen=True)
class BatchOutcome:
    """What one promoted batch did."""

    collection: str
    first_seq: int
    last_seq: int
    events: int
    records_upserted: int
    records_updated: int
    records_deleted: int
    version: str
    bytes_published: int
    seconds: float
    snapshot_requested: bool


@dataclass
class _Applied:
    result: ApplyResult
    hashes: RecordHashes | None  # None: unknown, the next batch scans
    digest: Digest


class BatchRunner:
    """Runs batches for every collection, keeping one warm working copy each."""

    def __init__(
        self,
        shared: SharedStore,
        objects: ObjectStore,
        staging_root: Path,
        config: ConsumerConfig,
        *,
        owner: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._shared = shared
        self._objects = objects
        self._staging_root = staging_root
        self._config = config
        self._owner = owner
        self._applier = EventApplier(
            attempts=config.apply_attempts,
            wait_seconds=config.retry_wait_seconds,
            sleep=sleep,
        )
        self._copies: dict[str, WorkingCopy] = {}

    def run(
        self,
        collection: str,
        events: Sequence[Envelope],
        fence: Callable[[], LeaseGrant],
    ) -> tuple[BatchOutcome, Manifest]:
        """Apply ``events`` and promote the result.

        ``fence`` returns the lease grant in force (renewing it) or raises;
        it is called once more just before publishing. Raises
        :class:`EventApplyError` naming the first event that failed after
        its retries; nothing is promoted then. Raises
        :class:`PromotionRefused` at once when the live version already
        does not end right before the first event (another writer promoted
        since the caller read where to start).
        """
        started = time.monotonic()
        timer = _Timer()
        copy = self._copy(collection)
        live = self._shared.live_manifest(collection)
        _check_start(collection, live, events)
        self._stage(copy, live, events, timer)
        try:
            applied = self._apply(copy, live, events, timer)
            grant = fence()
            manifest = self._publish(copy, live, events, applied, grant, timer)
            self._promote(collection, manifest, live, grant, timer)
        except BaseException:
            copy.discard()
            raise
        self._settle(copy, manifest, applied)
        outcome = _outcome(events, applied.result, manifest, live, started)
        self._log_promotion(outcome, timer)
        return outcome, manifest

    def close(self) -> None:
        """Release every working copy's lock."""
        for copy in self._copies.values():
            copy.close()
        self._copies.clear()

    # -- steps ----------------------------------------------------------------

    def _stage(
        self,
        copy: WorkingCopy,
        live: Manifest | None,
        events: Sequence[Envelope],
        timer: _Timer,
    ) -> None:
        rebuilt = copy.ensure(live)
        faults.point("workcopy_ready")
        copy.mark_dirty()
        log.info(
            "staging_setup",
            collection=copy.collection,
            first_seq=events[0].seq,
            last_seq=events[-1].seq,
            events=len(events),
            base_version=live.version if live else None,
            rebuilt=rebuilt,
            seconds=timer.lap("setup"),
        )

    def _apply(
        self,
        copy: WorkingCopy,
        live: Manifest | None,
        events: Sequence[Envelope],
        timer: _Timer,
    ) -> _Applied:
        if live is not None and not any(_changes_records(e) for e in events):
            return self._skip_chroma(copy, live, events, timer)
        before = copy.record_hashes
        known = KnownIds(before) if before is not None else None
        context = ApplyContext(
            self._objects,
            copy.scratch,
            self._config.delta_limits,
            known,
            receipts=before.receipts if before is not None else None,
        )
        result = ApplyResult()
        with open_collection(
            copy.path, copy.collection, space=self._config.hnsw_space
        ) as collection:
            for envelope, applied in self._applier.apply(collection, events, context):
                result.merge(applied)
                faults.point(f"applied_{envelope.payload.type}")
            timer.lap("apply")
            if known is not None:
                result.touched |= known.removed
            hashes = _refreshed(before, collection, result)
            digest = hashes.digest()
            timer.lap("digest")
        faults.point("client_closed")
        _compact(copy, timer)
        return _Applied(result, hashes, digest)

    def _skip_chroma(
        self,
        copy: WorkingCopy,
        live: Manifest,
        events: Sequence[Envelope],
        timer: _Timer,
    ) -> _Applied:
        """A batch of events that change no records (bookkeeping, snapshot
        requests) is not opened with ChromaDB at all, because opening writes
        to chroma.sqlite3: the version it publishes then shares every file
        with its parent (DESIGN section 8)."""
        result = ApplyResult()
        for envelope in events:
            result.merge(ApplyResult(snapshot_requested=_is_snapshot(envelope)))
            faults.point(f"applied_{envelope.payload.type}")
        timer.lap("apply")
        digest = Digest(live.digest, live.record_count)
        return _Applied(result, copy.record_hashes, digest)

    def _publish(
        self,
        copy: WorkingCopy,
        live: Manifest | None,
        events: Sequence[Envelope],
        applied: _Applied,
        grant: LeaseGrant,
        timer: _Timer,
    ) -> Manifest:
        manifest = self._shared.publish(
            copy.collection,
            copy.path,
            live,
            applied_seq=events[-1].seq,
            first_seq=events[0].seq,
            last_seq=events[-1].seq,
            digest=applied.digest.hexdigest,
            record_count=applied.digest.count,
            fencing_token=grant.token,
            writer=self._owner,
            hasher=copy.hasher,
        )
        timer.lap("publish")
        return manifest

    def _promote(
        self,
        collection: str,
        manifest: Manifest,
        live: Manifest | None,
        grant: LeaseGrant,
        timer: _Timer,
    ) -> None:
        self._shared.promote_or_remove(
            collection,
            manifest,
            expected_parent=live.version if live else None,
            fencing_token=grant.token,
        )
        timer.lap("promote")

    def _settle(self, copy: WorkingCopy, manifest: Manifest, applied: _Applied) -> None:
        """Keep the working copy warm for the next batch. The batch is
        promoted already, so a failure here only costs a rebuild."""
        try:
            copy.mark_clean(manifest, applied.hashes)
        except OSError:
            log.warning(
                "working_copy_kept_dirty", collection=copy.collection, exc_info=True
            )
            copy.discard()

    # -- helpers --------------------------------------------------------------

    def _copy(self, collection: str) -> WorkingCopy:
        if collection not in self._copies:
            self._copies[collection] = WorkingCopy(
                self._staging_root, collection, self._shared
            )
        return self._copies[collection]

    def _log_promotion(self, outcome: BatchOutcome, timer: _Timer) -> None:
        log.info(
            "promotion_complete",
            collection=outcome.collection,
            first_seq=outcome.first_seq,
            last_seq=outcome.last_seq,
            events=outcome.events,
            version=outcome.version,
            upserted=outcome.records_upserted,
            updated=outcome.records_updated,
            deleted=outcome.records_deleted,
            bytes_published=outcome.bytes_published,
            seconds=round(outcome.seconds, 4),
            durations=timer.laps,
        )


class _Timer:
    """Seconds spent in each named step."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> float:
        now = time.monotonic()
        self.laps[name] = round(now - self._last, 4)
        self._last = now
        return self.laps[name]


def _outcome(
    events: Sequence[Envelope],
    result: ApplyResult,
    manifest: Manifest,
    parent: Manifest | None,
    started: float,
) -> BatchOutcome:
    return BatchOutcome(
        collection=manifest.collection,
        first_seq=events[0].seq,
        last_seq=events[-1].seq,
        events=len(events),
        records_upserted=result.upserted,
        records_updated=result.updated,
        records_deleted=result.deleted,
        version=manifest.version,
        bytes_published=new_bytes(manifest, parent),
        seconds=time.monotonic() - started,
        snapshot_requested=result.snapshot_requested,
    )


def _refreshed(
    hashes: RecordHashes | None, collection: ChromaCollection, result: ApplyResult
) -> RecordHashes:
    """The record hashes after a batch: refreshed for the touched ids, or a
    full scan when the working copy's hashes are not known."""
    if hashes is None:
        return RecordHashes.scan(collection)
    hashes.refresh(
        collection, result.touched, result.metadata_touched, result.metadata_after
    )
    return hashes


def _compact(copy: WorkingCopy, timer: _Timer) -> None:
    """Drop the SQLite file's free pages before it is published (see
    :mod:`pipeline.compaction`)."""
    done = compact(copy.path)
    seconds = timer.lap("compact")
    if done is not None:
        log.debug(
            "sqlite_compacted",
            collection=copy.collection,
            bytes_before=done.bytes_before,
            bytes_after=done.bytes_after,
            free_pages=done.free_pages,
            converted=done.converted,
            seconds=seconds,
        )


def _check_start(
    collection: str, live: Manifest | None, events: Sequence[Envelope]
) -> None:
    """Refuse a batch that does not start right after the live version.

    The caller chose ``events`` from an ``applied_seq`` it read before this
    runner read ``live``; a writer that promoted in between makes the batch
    stale, and both directions pass the compare-and-swap, whose parent is
    the version read here. Forward (another consumer, once a lease was
    lost): old events would be applied over newer ones, and a delta
    upserted again after its receipt's deletion brings it back. Backward
    (``replay --promote`` of a rebuild behind live): the version would
    claim the events between the two without holding them.
    """
    applied = live.applied_seq if live else 0
    if events and events[0].seq != applied + 1:
        raise PromotionRefused(
            collection,
            f"batch starts at seq {events[0].seq}, but live version "
            f"{live.version if live else None} has applied up to seq {applied}",
        )


def _changes_records(envelope: Envelope) -> bool:
    return envelope.payload.type in RECORD_TYPES


def _is_snapshot(envelope: Envelope) -> bool:
    return envelope.payload.type == "snapshot_request"
