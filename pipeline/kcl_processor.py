"""The KCL record processor: Kinesis records in, promoted versions out.

The Java MultiLangDaemon owns the shard leases and starts one process per
shard; ``amazon_kclpy`` turns the daemon's JSON lines on stdin into calls of
the v3 interface below. stdout is the protocol channel, so nothing here ever
writes to it; logs go through structlog (a file or stderr).

Per batch: decode each record, group the envelopes by collection, hand each
group to the consumer (which skips ``seq <= applied``, fills gaps from the
journal, applies, publishes and promotes under the collection lease), then
checkpoint the last record covered by promoted data (see
:mod:`pipeline.kcl_checkpoint`). A collection that fails stops the
checkpoint at its first unapplied record; the others still apply. No
exception leaves ``process_records``: amazon_kclpy would only print it, and
the daemon would carry on with the next batch as if this one were done.

Timeline of a failover, and why the collection lease is still needed::

    processor A   apply ── [paused ........................] promote? refused
    KCL           A's shard lease expires ─▶ B takes the shard
    processor B                        acquire lease ── apply ── promote

The KCL checkpoint is only an optimisation; the fencing token in every
manifest is what keeps A from promoting over B (:mod:`pipeline.lease`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from amazon_kclpy.checkpoint_error import CheckpointError
from amazon_kclpy.v3.processor import RecordProcessorBase

from journal.events import Envelope
from journal.kinesis import decode_record
from pipeline.errors import LeaseUnavailable, PromotionRefused
from pipeline.kcl_checkpoint import CheckpointTracker, Position, TrackedRecord

log = structlog.get_logger(__name__)

#: Checkpoint errors the daemon reports (KCL's exception class names).
THROTTLED = "ThrottlingException"
SHUT_DOWN = "ShutdownException"


class Applier(Protocol):
    """What the processor needs from :class:`pipeline.consumer.Consumer`."""

    def apply_envelopes(
        self, collection: str, envelopes: list[Envelope]
    ) -> Sequence[object]:
        """Apply and promote what is new among ``envelopes``."""

    def applied_seq(self, collection: str) -> int:
        """The live version's ``applied_seq``."""

    def catch_up(self, collections: list[str] | None = None) -> Sequence[object]:
        """Apply whatever the journal holds past ``applied_seq``."""

    def close(self) -> None:
        """Release the collection leases and working copies."""


#: Builds the consumer once the shard is known; the argument is the writer
#: id the consumer uses as its collection-lease owner.
ApplierFactory = Callable[[str], Applier]
#: Given a shard id, which collections' partition keys map to that shard.
Ownership = Callable[[str], Callable[[str], bool]]


def owns_nothing(_shard_id: str) -> Callable[[str], bool]:
    """Ownership when shard ranges are unknown: only collections seen."""
    return lambda _collection: False


@dataclass(frozen=True)
class ProcessorOptions:
    """Tunables of the record processor."""

    worker_id: str
    idle_catch_up_seconds: float = 30.0
    checkpoint_attempts: int = 5
    checkpoint_backoff_seconds: float = 0.2


class ChromaRecordProcessor(RecordProcessorBase):  # type: ignore[misc]
    """Applies one shard's records through the consumer, then checkpoints."""

    def __init__(
        self,
        make_applier: ApplierFactory,
        options: ProcessorOptions,
        *,
        journal_collections: Callable[[], list[str]] = list,
        ownership: Ownership = owns_nothing,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._make_applier = make_applier
        self._options = options
        self._journal_collections = journal_collections
        self._ownership = ownership
        self._clock = clock
        self._sleep = sleep
        self._applier: Applier | None = None
        self._owns: Callable[[str], bool] = lambda _collection: False
        self._shard_id = "unknown"
        self._tracker = CheckpointTracker()
        self._seen: set[str] = set()
        self._last_records_at = clock()
        self._last_catch_up_at = clock()
        self._stopped = False

    @property
    def owner(self) -> str:
        """The collection-lease owner: the worker id (which names the host
        and the process) plus the shard id."""
        return f"{self._options.worker_id}/{self._shard_id}"

    # The v3 interface --------------------------------------------------------

    def initialize(self, initialize_input: Any) -> None:
        """Build the consumer for this shard; remember where KCL resumed."""
        self._shard_id = str(initialize_input.shard_id)
        start = initialize_input.sequence_number
        if start is not None:
            self._tracker = CheckpointTracker(
                Position(str(start), int(initialize_input.sub_sequence_number or 0))
            )
        self._owns = self._ownership(self._shard_id)
        try:
            self._require_applier()
        except Exception:
            # Retried on first use; until then nothing applies or checkpoints.
            log.exception("kcl_consumer_unavailable", shard_id=self._shard_id)
        log.info(
            "kcl_processor_started",
            shard_id=self._shard_id,
            owner=self.owner,
            resume_from=start,
        )

    def process_records(self, process_records_input: Any) -> None:
        """Apply a batch and checkpoint what promoted data covers."""
        try:
            self._process(process_records_input.records)
            self._checkpoint_safe(process_records_input.checkpointer)
        except Exception:
            # The checkpoint stays where it was; these records come back
            # after a restart, and the journal fills any gap before that.
            log.exception("kcl_batch_failed", shard_id=self._shard_id)

    def lease_lost(self, lease_lost_input: Any) -> None:
        """Stop without checkpointing: another worker owns the shard now.

        The collection leases are released so that the successor need not
        wait for them to expire.
        """
        self._stopped = True
        log.warning(
            "kcl_lease_lost",
            shard_id=self._shard_id,
            pending_records=self._tracker.pending_count,
        )
        self._close_applier()

    def shard_ended(self, shard_ended_input: Any) -> None:
        """Catch up what is still pending, then checkpoint the shard's end.

        The end must be checkpointed even when a collection is still blocked,
        or KCL would never start the child shards and every collection on
        this shard would stall. The blocked collection's events stay in the
        journal, and the processor that next owns it applies them.
        """
        try:
            self._catch_up(self._tracker.pending_collections, reason="shard_end")
            self._tracker.settle(self._applied_or_none)
            if self._tracker.pending_count:
                log.warning(
                    "kcl_shard_ended_with_pending",
                    shard_id=self._shard_id,
                    collections=self._tracker.pending_collections,
                )
            self._checkpoint(shard_ended_input.checkpointer, None)
        except Exception:
            log.exception("kcl_shard_end_failed", shard_id=self._shard_id)
        self._stopped = True
        self._close_applier()

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        """Checkpoint what is promoted before the worker shuts down."""
        try:
            self._tracker.settle(self._applied_or_none)
            self._checkpoint_safe(shutdown_requested_input.checkpointer)
        except Exception:
            log.exception("kcl_shutdown_checkpoint_failed", shard_id=self._shard_id)
        log.info("kcl_shutdown_requested", shard_id=self._shard_id)
        self._close_applier()

    # Steps ---------------------------------------------------------------------

    def _process(self, raw_records: list[Any]) -> None:
        now = self._clock()
        tracked, groups = self._decode(raw_records)
        applied = {
            collection: seq
            for collection, envelopes in groups.items()
            if (seq := self._apply(collection, envelopes)) is not None
        }
        self._tracker.add(tracked, applied)
        if tracked:
            # Idle time counts from the end of the last batch with records.
            self._last_records_at = self._clock()
        elif self._idle(now):
            self._catch_up(self._owned_collections(), reason="idle")
        self._tracker.settle(self._applied_or_none)
        if tracked:
            log.info(
                "kcl_batch",
                shard_id=self._shard_id,
                records=len(tracked),
                collections=sorted(groups),
                applied=applied,
                pending_records=self._tracker.pending_count,
            )

    def _decode(
        self, raw_records: list[Any]
    ) -> tuple[list[TrackedRecord], dict[str, list[Envelope]]]:
        tracked: list[TrackedRecord] = []
        groups: dict[str, dict[int, Envelope]] = {}
        for record in raw_records:
            position = Position(
                str(record.sequence_number), int(record.sub_sequence_number or 0)
            )
            envelope = self._envelope_of(record, position)
            if envelope is None:
                tracked.append(TrackedRecord(position))
                continue
            tracked.append(TrackedRecord(position, envelope.collection, envelope.seq))
            groups.setdefault(envelope.collection, {})[envelope.seq] = envelope
        ordered = {
            collection: [by_seq[seq] for seq in sorted(by_seq)]
            for collection, by_seq in groups.items()
        }
        return tracked, ordered

    def _envelope_of(self, record: Any, position: Position) -> Envelope | None:
        try:
            data = record.binary_data
        except ValueError:
            log.warning(
                "kcl_record_undecodable",
                shard_id=self._shard_id,
                sequence_number=position.sequence_number,
            )
            return None
        return decode_record(
            data, shard_id=self._shard_id, sequence_number=position.sequence_number
        )

    def _apply(self, collection: str, envelopes: list[Envelope]) -> int | None:
        """Hand one collection's envelopes over; its ``applied_seq`` after."""
        self._seen.add(collection)
        context = {
            "shard_id": self._shard_id,
            "collection": collection,
            "first_seq": envelopes[0].seq,
            "last_seq": envelopes[-1].seq,
        }
        try:
            self._require_applier().apply_envelopes(collection, envelopes)
        except (LeaseUnavailable, PromotionRefused) as refused:
            # Expected around a failover: another writer owns the collection.
            log.warning("kcl_collection_refused", reason=str(refused), **context)
        except Exception:
            log.exception("kcl_collection_failed", **context)
        return self._applied_or_none(collection)

    def _applied_or_none(self, collection: str) -> int | None:
        try:
            return self._require_applier().applied_seq(collection)
        except Exception:
            log.exception("kcl_applied_seq_unknown", collection=collection)
            return None

    def _idle(self, now: float) -> bool:
        wait = self._options.idle_catch_up_seconds
        return (
            now - self._last_records_at >= wait and now - self._last_catch_up_at >= wait
        )

    def _owned_collections(self) -> list[str]:
        owned = set(self._seen) | set(self._tracker.pending_collections)
        try:
            owned.update(c for c in self._journal_collections() if self._owns(c))
        except Exception:
            log.exception("kcl_journal_collections_failed", shard_id=self._shard_id)
        return sorted(owned)

    def _catch_up(self, collections: list[str], *, reason: str) -> None:
        """Apply what the journal holds past each collection's applied seq."""
        self._last_catch_up_at = self._clock()
        if not collections:
            return
        context = {
            "shard_id": self._shard_id,
            "collections": collections,
            "reason": reason,
        }
        try:
            outcomes = self._require_applier().catch_up(collections)
        except Exception:
            log.exception("kcl_catch_up_failed", **context)
            return
        log.info("kcl_catch_up", promoted_batches=len(outcomes), **context)

    def _checkpoint_safe(self, checkpointer: Any) -> None:
        position = self._tracker.due()
        if position is not None and not self._stopped:
            self._checkpoint(checkpointer, position)

    def _checkpoint(self, checkpointer: Any, position: Position | None) -> None:
        """Checkpoint at ``position`` (None: the end of the shard)."""
        for attempt in range(1, self._options.checkpoint_attempts + 1):
            error = _try_checkpoint(checkpointer, position)
            if error is None:
                if position is not None:
                    self._tracker.mark_checkpointed(position)
                log.debug("kcl_checkpointed", shard_id=self._shard_id, at=position)
                return
            if error != THROTTLED or attempt == self._options.checkpoint_attempts:
                self._checkpoint_failed(error, position)
                return
            log.warning("kcl_checkpoint_throttled", attempt=attempt)
            self._sleep(self._options.checkpoint_backoff_seconds * 2 ** (attempt - 1))

    def _checkpoint_failed(self, error: str, position: Position | None) -> None:
        if error == SHUT_DOWN:
            # The lease is going away; the successor resumes from the last
            # checkpoint and skips what is promoted by seq.
            self._stopped = True
            log.info("kcl_checkpoint_after_shutdown", shard_id=self._shard_id)
            return
        log.error(
            "kcl_checkpoint_failed",
            shard_id=self._shard_id,
            error=error,
            at=position,
        )

    def _close_applier(self) -> None:
        if self._applier is None:
            return
        try:
            self._applier.close()
        except Exception:
            log.exception("kcl_consumer_close_failed", shard_id=self._shard_id)

    def _require_applier(self) -> Applier:
        """The consumer, built on first use (again, if building it failed)."""
        if self._applier is None:
            self._applier = self._make_applier(self.owner)
        return self._applier


def _try_checkpoint(checkpointer: Any, position: Position | None) -> str | None:
    """Checkpoint once; the daemon's error name, or None on success."""
    try:
        if position is None:
            checkpointer.checkpoint()
        else:
            checkpointer.checkpoint(
                position.sequence_number, position.sub_sequence_number
            )
    except CheckpointError as error:
        return str(error.value)
    return None
