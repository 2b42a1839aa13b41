"""The consumer: applies each collection's journal events in seq order.

Per collection it repeats one step: read the next batch after the live
version's ``applied_seq`` (which moves exactly when the data moves), take
the collection lease, and hand the batch to :class:`BatchRunner`, which
stages, applies, publishes and promotes it. After a promotion it mirrors
the status, calls the ``after_promote`` hook (snapshots) and collects old
versions.

An event that still fails after its retries stops its collection: the
events before it are promoted as a batch of their own, the failure is
recorded in the journal as ``event_parked`` (see :mod:`pipeline.parking`),
the collection is marked blocked at the failing seq (logged as
``event_parked`` and mirrored into the status), and it does not advance
until an operator resumes it (the status mirror's block is cleared) or
skips the event (an ``event_skipped`` record appears in the journal).
Other collections carry on. Skipped events are neutralized before any batch
is applied, exactly as replay does, so a rebuild equals the live collection.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import structlog

from journal.base import Clock, Journal, utc_now
from journal.errors import ChromaJournalError, UnreadableEvent
from journal.events import Envelope
from journal.objectstore import ObjectStore
from pipeline import faults
from pipeline.batching import Batch, take_batch, with_gaps_filled
from pipeline.config import ConsumerConfig
from pipeline.errors import EventApplyError, JournalGapError, LeaseUnavailable
from pipeline.heartbeat import LeaseHeartbeat
from pipeline.lease import Lease, LeaseGrant
from pipeline.manifest import Manifest
from pipeline.parking import (
    SkipIndex,
    honour_skips,
    parked_event,
    unreadable_placeholder,
)
from pipeline.runner import BatchOutcome, BatchRunner
from pipeline.status import CollectionStatus, StatusStore
from pipeline.store import SharedStore

__all__ = ["BatchOutcome", "BlockedEvent", "Consumer", "ConsumerConfig"]

log = structlog.get_logger(__name__)

AfterPromote = Callable[[Manifest, Sequence[Envelope]], None]


@dataclass(frozen=True)
class BlockedEvent:
    """Where a collection stopped and why."""

    collection: str
    seq: int
    error: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.error}"


class Consumer:
    """Applies journal events to the collections in the shared store."""

    def __init__(
        self,
        journal: Journal,
        objects: ObjectStore,
        shared: SharedStore,
        staging_root: Path,
        lease: Lease,
        status: StatusStore,
        config: ConsumerConfig,
        *,
        owner: str,
        clock: Clock = utc_now,
        after_promote: AfterPromote | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.journal = journal
        self.shared = shared
        self.config = config
        self.owner = owner
        self._lease = lease
        self._status = status
        self._clock = clock
        self._sleep = sleep
        self._after_promote = after_promote
        self._runner = BatchRunner(
            shared, objects, staging_root, config, owner=owner, sleep=sleep
        )
        self._grants: dict[str, LeaseGrant] = {}
        self._blocked: dict[str, BlockedEvent] = {}
        self._skips = SkipIndex(journal)
        self._unreadable: dict[str, UnreadableEvent] = {}
        #: Events parked by this consumer since it started (a metric).
        self.parked_total = 0

    # -- state ----------------------------------------------------------------

    def applied_seq(self, collection: str) -> int:
        """The live version's ``applied_seq`` (0 before the first version)."""
        manifest = self.shared.live_manifest(collection)
        return manifest.applied_seq if manifest else 0

    def blocked(self) -> dict[str, BlockedEvent]:
        """Collections stopped at a failing event."""
        return dict(self._blocked)

    def unblock(self, collection: str) -> None:
        """Let a blocked collection try its failing event again."""
        self._blocked.pop(collection, None)

    # -- driving --------------------------------------------------------------

    def step(self, collection: str) -> BatchOutcome | None:
        """Apply and promote the next batch of ``collection``; None when it is
        caught up or blocked (or its only batch failed at its first event)."""
        if collection in self._blocked and not self._released(collection):
            return None
        applied = self.applied_seq(collection)
        batch = self._read_batch(collection, applied)
        if batch.events and not batch.full:
            batch = self._linger(collection, applied, batch)
        if not batch.events:
            unreadable = self._unreadable.pop(collection, None)
            if unreadable is not None and unreadable.seq == applied + 1:
                return self._stop_at_unreadable(unreadable)
            if self.journal.head(collection) > applied:
                raise JournalGapError(collection, applied + 1)
            return None
        return self._run(collection, self._honour_skips(collection, batch.events))

    def apply_envelopes(
        self, collection: str, envelopes: Iterable[Envelope]
    ) -> list[BatchOutcome]:
        """Apply delivered envelopes (e.g. from a stream) up to the highest
        seq among them: already applied ones are skipped, missing ones are
        read from the journal. Raises :class:`JournalGapError` when the
        journal lacks one too."""
        given = {envelope.seq: envelope for envelope in envelopes}
        foreign = {e.collection for e in given.values()} - {collection}
        if foreign:
            raise ValueError(f"envelopes of {sorted(foreign)} given for {collection}")
        outcomes: list[BatchOutcome] = []
        target = max(given, default=0)
        while collection not in self._blocked or self._released(collection):
            applied = self.applied_seq(collection)
            if applied >= target:
                break
            events = with_gaps_filled(self.journal, collection, applied, given)
            batch = self._take(collection, applied, events)
            if not batch.events:
                raise JournalGapError(collection, applied + 1)
            outcome = self._run(
                collection, self._honour_skips(collection, batch.events)
            )
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def catch_up(self, collections: Iterable[str] | None = None) -> list[BatchOutcome]:
        """Step every collection (default: all in the journal) until each is
        at its journal head or blocked. Errors other than failing events
        propagate."""
        names = self.journal.collections() if collections is None else collections
        outcomes: list[BatchOutcome] = []
        for collection in names:
            while (outcome := self.step(collection)) is not None:
                outcomes.append(outcome)
        return outcomes

    def run(self, stop: threading.Event, *, until_caught_up: bool = False) -> None:
        """Tail the journal until ``stop`` is set (checked between batches,
        so a stop never leaves a half-promoted state). With
        ``until_caught_up``, return after the first pass that promoted
        nothing. Errors are logged per collection and retried next poll."""
        try:
            while not stop.is_set():
                progressed = self._pass(stop)
                if until_caught_up and not progressed:
                    return
                if not progressed:
                    stop.wait(self.config.poll_interval_seconds)
        finally:
            self.close()

    def close(self) -> None:
        """Release the leases and working copies this consumer holds."""
        for grant in self._grants.values():
            try:
                self._lease.release(grant)
            except Exception:
                # It expires on its own; a successor only waits for the TTL.
                log.exception("lease_release_failed", collection=grant.collection)
        self._grants.clear()
        self._runner.close()

    # -- batches --------------------------------------------------------------

    def _read_batch(self, collection: str, applied: int) -> Batch:
        upto = applied + self.config.group_commit_max_events
        events = self.journal.read(collection, after=applied, upto=upto)
        return self._take(collection, applied, self._readable(collection, events))

    def _readable(
        self, collection: str, events: Iterable[Envelope]
    ) -> Iterator[Envelope]:
        """The events up to the first one that cannot be decoded; that one is
        remembered, so the batch before it still runs and the next step stops
        exactly there."""
        try:
            yield from events
        except UnreadableEvent as error:
            self._unreadable[collection] = error

    def _stop_at_unreadable(self, error: UnreadableEvent) -> BatchOutcome | None:
        """Park and block at an undecodable event, or move past it when the
        journal holds a skip for it."""
        skip = self._skips.skips(error.collection, error.seq - 1).get(error.seq)
        if skip is not None:
            return self._run(error.collection, [unreadable_placeholder(error, skip)])
        failure = EventApplyError(error.collection, error.seq, error.cause)
        self._park(failure)
        self._block(failure)
        return None

    def _take(self, collection: str, applied: int, events: Iterable[Envelope]) -> Batch:
        return take_batch(
            events,
            collection,
            applied,
            max_events=self.config.group_commit_max_events,
            max_records=self.config.group_commit_max_records,
        )

    def _linger(self, collection: str, applied: int, batch: Batch) -> Batch:
        """Group commit: wait until the oldest event is old enough that more
        events had their chance to join, then read again."""
        limit = self.config.group_commit_max_seconds
        age = (self._clock() - batch.events[0].recorded_at).total_seconds()
        if limit <= 0 or age >= limit:
            return batch
        self._sleep(min(limit, limit - age))
        return self._read_batch(collection, applied)

    def _run(self, collection: str, events: list[Envelope]) -> BatchOutcome | None:
        """Promote ``events``; when one fails, promote the ones before it and
        block the collection at it."""
        ttl = timedelta(seconds=self.config.lease_ttl_seconds)
        while events:
            grant = self._fence(collection)
            try:
                with LeaseHeartbeat(self._lease, grant, ttl):
                    outcome, manifest = self._runner.run(
                        collection,
                        events,
                        lambda: self._fence(collection, renew_only=True),
                    )
            except EventApplyError as failure:
                self._park(failure)
                self._block(failure)
                events = [e for e in events if e.seq < failure.seq]
                continue
            self._after_promotion(manifest, outcome, events)
            return outcome
        return None

    def _after_promotion(
        self, manifest: Manifest, outcome: BatchOutcome, events: Sequence[Envelope]
    ) -> None:
        self._mirror(manifest, outcome)
        faults.point("status_mirrored")
        if self._after_promote is not None:
            try:
                self._after_promote(manifest, events)
            except Exception:
                # The batch is promoted; the hook owns its own retries.
                log.exception(
                    "after_promote_failed",
                    collection=manifest.collection,
                    version=manifest.version,
                )
        try:
            self.shared.gc(
                manifest.collection,
                keep=self.config.versions_keep,
                grace_seconds=self.config.versions_grace_seconds,
            )
        except Exception:
            log.exception("gc_failed", collection=manifest.collection)

    # -- skips, parking, blocking ---------------------------------------------

    def _honour_skips(
        self, collection: str, events: Sequence[Envelope]
    ) -> list[Envelope]:
        floor = events[0].seq - 1
        return list(honour_skips(events, self._skips.skips(collection, floor)))

    def _released(self, collection: str) -> bool:
        """True (and unblocked) when the event a collection is stopped at was
        skipped in the journal, or an operator resumed the collection."""
        blocked = self._blocked[collection]
        skipped = blocked.seq in self._skips.skips(collection, blocked.seq - 1)
        try:
            mirrored = self._status.get(collection)
        except Exception:
            log.exception("status_read_failed", collection=collection)
            return False
        resumed = mirrored is not None and mirrored.blocked_seq is None
        if skipped or resumed:
            log.info(
                "collection_released",
                collection=collection,
                seq=blocked.seq,
                reason="skipped" if skipped else "resumed",
            )
            self.unblock(collection)
            return True
        return False

    def _park(self, failure: EventApplyError) -> None:
        """Record the failure in the journal; the decision is history too."""
        self.parked_total += 1
        event = parked_event(
            failure.collection,
            failure.seq,
            failure.cause,
            self.config.apply_attempts,
            producer=self.owner,
        )
        try:
            self.journal.append(event)
        except ChromaJournalError:
            # The block below still holds the collection; the next failure
            # (after a restart) tries to record the park again.
            log.exception(
                "park_record_failed", collection=failure.collection, seq=failure.seq
            )

    # -- lease, blocking, status ----------------------------------------------

    def _fence(self, collection: str, *, renew_only: bool = False) -> LeaseGrant:
        """The lease grant in force: renewed if held, else acquired anew.

        Just before publishing (``renew_only``) a lease that cannot be renewed
        is not taken again: the batch was staged under the old grant, and a
        new, larger token would let a writer that lost its lease mid-batch
        pass the fencing check. Only the parent check would then stop it::

            this writer  acquire(t=7) ── stage ──── [paused] ── renew? no ─▶ abort
            successor              expiry ─▶ acquire(t=8) ── promote ── release
        """
        ttl = timedelta(seconds=self.config.lease_ttl_seconds)
        held = self._grants.get(collection)
        grant = self._lease.renew(held, ttl) if held else None
        if grant is None and not renew_only:
            grant = self._lease.acquire(collection, self.owner, ttl)
        if grant is None:
            self._grants.pop(collection, None)
            holder = self._lease.current(collection)
            raise LeaseUnavailable(collection, holder.owner if holder else None)
        self._grants[collection] = grant
        return grant

    def _block(self, failure: EventApplyError) -> None:
        blocked = BlockedEvent(failure.collection, failure.seq, failure.cause)
        self._blocked[failure.collection] = blocked
        log.error(
            "event_parked",
            collection=failure.collection,
            seq=failure.seq,
            cause=failure.cause,
            attempts=self.config.apply_attempts,
        )
        try:
            previous = self._status.get(failure.collection)
        except Exception:
            log.exception("status_read_failed", collection=failure.collection)
            previous = None
        live = self.shared.live_manifest(failure.collection)
        base = previous or CollectionStatus(
            failure.collection,
            applied_seq=live.applied_seq if live else 0,
            live_version=live.version if live else None,
        )
        self._put_status(
            dataclasses.replace(
                base, blocked_seq=failure.seq, blocked_error=failure.cause
            )
        )

    def _mirror(self, manifest: Manifest, outcome: BatchOutcome) -> None:
        blocked = self._blocked.get(manifest.collection)
        self._put_status(
            CollectionStatus(
                collection=manifest.collection,
                applied_seq=manifest.applied_seq,
                live_version=manifest.version,
                promoted_at=self._clock(),
                last_batch_events=outcome.events,
                last_batch_seconds=outcome.seconds,
                blocked_seq=blocked.seq if blocked else None,
                blocked_error=blocked.error if blocked else None,
            )
        )

    def _put_status(self, status: CollectionStatus) -> None:
        try:
            self._status.put(status)
        except Exception:
            # A mirror only; the manifest is the truth. Log and carry on.
            log.exception("status_mirror_failed", collection=status.collection)

    def _pass(self, stop: threading.Event) -> bool:
        """One pass over every collection; True when anything was promoted."""
        try:
            names = self.journal.collections()
        except ChromaJournalError:
            log.exception("journal_unavailable")
            return False
        progressed = False
        for collection in names:
            if stop.is_set():
                break
            progressed |= self._drain(collection, stop)
        return progressed

    def _drain(self, collection: str, stop: threading.Event) -> bool:
        """Step ``collection`` until caught up, blocked, failed or stopped;
        True when at least one batch was promoted."""
        progressed = False
        while not stop.is_set():
            try:
                outcome = self.step(collection)
            except LeaseUnavailable as busy:
                log.info(
                    "lease_held_elsewhere", collection=collection, holder=busy.holder
                )
                return progressed
            except Exception:
                log.exception("batch_failed", collection=collection)
                return progressed
            if outcome is None:
                return progressed
            progressed = True
        return progressed
