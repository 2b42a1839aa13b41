"""Building a collection from a base and the journal, with the consumer's
apply code.

::

    restore base (or start empty) ─▶ open ─▶ hash base, check its digest
        ─▶ apply (base_seq, target] in batches, skipped seqs passed over
        ─▶ hash what changed ─▶ digest ─▶ close

Events are applied by :class:`pipeline.applier.EventApplier`, the code the
consumer applies them with (same retries, same grouping of label updates),
so a rebuild reaches the digest the consumer reached at the same seq. A
skipped event is neutralized by :func:`pipeline.parking.honour_skips`, as
the consumer does: it and every bookkeeping event change nothing but still
count towards the rebuild's ``applied_seq`` (DESIGN section 8).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from journal.base import Journal
from journal.deltas import DeltaLimits
from journal.events import Envelope, EventSkipped
from journal.objectstore import ObjectStore
from pipeline.applier import EventApplier
from pipeline.apply import ApplyContext, ApplyResult
from pipeline.chroma import ChromaCollection, open_collection
from pipeline.config import ConsumerConfig
from pipeline.digest import DIGEST_FORMAT, Digest, digest_format, digest_like
from pipeline.errors import EventApplyError, JournalGapError
from pipeline.parking import honour_skips
from replay.errors import BaseCorrupt, ReplayApplyError
from replay.hashes import RecordIndex
from replay.plan import ReplayPlan, consecutive
from replay.progress import NullProgress, ReplayProgress
from replay.sources import SnapshotInfo

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReplayConfig:
    """How a rebuild opens collections, batches and retries."""

    hnsw_space: str = "cosine"
    delta_limits: DeltaLimits = field(default_factory=DeltaLimits)
    batch_events: int = 500
    apply_attempts: int = 3
    retry_wait_seconds: float = 0.1

    def __post_init__(self) -> None:
        if self.batch_events < 1 or self.apply_attempts < 1:
            raise ValueError("batch_events and apply_attempts must be at least 1")

    @classmethod
    def from_consumer(cls, config: ConsumerConfig) -> ReplayConfig:
        """The settings a rebuild must share with the consumer it matches."""
        return cls(
            hnsw_space=config.hnsw_space,
            delta_limits=config.delta_limits,
            apply_attempts=config.apply_attempts,
            retry_wait_seconds=config.retry_wait_seconds,
        )


@dataclass
class Built:
    """A finished build: a closed ChromaDB directory and what it holds."""

    collection: str
    path: Path
    base: SnapshotInfo | None
    applied_seq: int
    index: RecordIndex
    digest: Digest
    applied: ApplyResult
    events_applied: int
    skipped: list[int]
    seconds: float

    @property
    def first_seq(self) -> int | None:
        """First seq of the replayed range (None when nothing was read)."""
        base_seq = self.base.applied_seq if self.base else 0
        return base_seq + 1 if self.applied_seq > base_seq else None


@dataclass
class _Tally:
    applied: ApplyResult = field(default_factory=ApplyResult)
    events: int = 0
    skipped: list[int] = field(default_factory=list)
    last_seq: int = 0


class Rebuilder:
    """Builds collections from a base and the journal; see the module doc."""

    def __init__(
        self,
        journal: Journal,
        objects: ObjectStore,
        config: ReplayConfig | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._journal = journal
        self._objects = objects
        self._config = config or ReplayConfig()
        self._applier = EventApplier(
            attempts=self._config.apply_attempts,
            wait_seconds=self._config.retry_wait_seconds,
            sleep=sleep,
        )

    def build(
        self,
        plan: ReplayPlan,
        dest: Path,
        *,
        scratch: Path,
        progress: ReplayProgress | None = None,
    ) -> Built:
        """Build ``plan`` into the new directory ``dest``; deltas are unpacked
        under ``scratch``."""
        started = time.monotonic()
        progress = progress or NullProgress()
        restored = self._restore(plan, dest)
        context = ApplyContext(self._objects, scratch, self._config.delta_limits)
        progress.start(plan.collection, plan.events, plan.records)
        try:
            with open_collection(
                dest, plan.collection, space=self._config.hnsw_space
            ) as collection:
                index = self._base_index(plan, restored, collection)
                tally = self._apply_range(plan, collection, context, progress)
                index = self._final_index(plan, index, collection, tally)
        finally:
            progress.stop()
        built = Built(
            collection=plan.collection,
            path=dest,
            base=plan.base,
            applied_seq=plan.target_seq,
            index=index,
            digest=index.digest(),
            applied=tally.applied,
            events_applied=tally.events,
            skipped=tally.skipped,
            seconds=time.monotonic() - started,
        )
        _log_built(built)
        return built

    # -- steps ----------------------------------------------------------------

    def _restore(self, plan: ReplayPlan, dest: Path) -> SnapshotInfo | None:
        if plan.base is None or plan.source is None:
            dest.mkdir(parents=True)
            return None
        restored = plan.source.restore(plan.collection, plan.base.version, dest)
        if restored.applied_seq != plan.base.applied_seq:
            raise BaseCorrupt(
                plan.collection,
                plan.base.version,
                f"it holds seq {restored.applied_seq}, listed as "
                f"{plan.base.applied_seq}",
            )
        log.info(
            "replay_base_restored",
            collection=plan.collection,
            version=plan.base.version,
            applied_seq=restored.applied_seq,
        )
        return restored

    def _base_index(
        self,
        plan: ReplayPlan,
        restored: SnapshotInfo | None,
        collection: ChromaCollection,
    ) -> RecordIndex:
        """The base's record hashes, checked against its recorded digest."""
        if restored is None:
            return RecordIndex()
        index = RecordIndex.scan(collection)
        expected = restored.digest or (plan.base.digest if plan.base else None)
        actual = index.digest().hexdigest
        if expected is not None and digest_format(expected) != DIGEST_FORMAT:
            # Recorded before the digest format in force: check it in its own.
            actual = digest_like(collection, expected).hexdigest
        if expected is not None and actual != expected:
            raise BaseCorrupt(
                plan.collection,
                restored.version,
                f"content digest {actual}, but it was recorded as {expected}",
            )
        return index

    def _apply_range(
        self,
        plan: ReplayPlan,
        collection: ChromaCollection,
        context: ApplyContext,
        progress: ReplayProgress,
    ) -> _Tally:
        tally = _Tally(last_seq=plan.base_seq)
        read = self._journal.read(
            plan.collection, after=plan.base_seq, upto=plan.target_seq
        )
        events = honour_skips(consecutive(read, plan.base_seq), plan.skips)
        for batch in _batched(events, self._config.batch_events):
            merged = tally.applied.upserted
            self._apply_batch(plan, collection, batch, context, tally)
            progress.advance(len(batch), tally.applied.upserted - merged)
            log.debug(
                "replay_batch_applied",
                collection=plan.collection,
                first_seq=batch[0].seq,
                last_seq=batch[-1].seq,
            )
        if tally.last_seq != plan.target_seq:
            raise JournalGapError(plan.collection, tally.last_seq + 1)
        return tally

    def _apply_batch(
        self,
        plan: ReplayPlan,
        collection: ChromaCollection,
        batch: list[Envelope],
        context: ApplyContext,
        tally: _Tally,
    ) -> None:
        try:
            for envelope, result in self._applier.apply(collection, batch, context):
                tally.applied.merge(result)
                tally.last_seq = envelope.seq
                if _is_skipped(plan, envelope):
                    tally.skipped.append(envelope.seq)
                else:
                    tally.events += 1
        except EventApplyError as failure:
            raise ReplayApplyError(
                failure.collection, failure.seq, failure.cause
            ) from failure

    @staticmethod
    def _final_index(
        plan: ReplayPlan,
        index: RecordIndex,
        collection: ChromaCollection,
        tally: _Tally,
    ) -> RecordIndex:
        """From empty every record was touched: one paged scan reads them
        faster than fetching them by id. From a base, re-hash what changed."""
        if plan.base is None:
            return RecordIndex.scan(collection)
        applied = tally.applied
        index.refresh(
            collection,
            applied.touched,
            applied.metadata_touched,
            applied.metadata_after,
        )
        return index


def _is_skipped(plan: ReplayPlan, envelope: Envelope) -> bool:
    """True for an event :func:`honour_skips` neutralized."""
    return envelope.seq in plan.skips and isinstance(envelope.payload, EventSkipped)


def _batched(events: Iterable[Envelope], size: int) -> Iterator[list[Envelope]]:
    iterator = iter(events)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _log_built(built: Built) -> None:
    log.info(
        "replay_built",
        collection=built.collection,
        base_version=built.base.version if built.base else None,
        applied_seq=built.applied_seq,
        events_applied=built.events_applied,
        skipped=built.skipped,
        upserted=built.applied.upserted,
        updated=built.applied.updated,
        deleted=built.applied.deleted,
        records=built.digest.count,
        digest=built.digest.hexdigest,
        seconds=round(built.seconds, 3),
    )
