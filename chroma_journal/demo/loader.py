"""Load the demo receipts into a journal: read, plan, write deltas, append.

Running the loader twice appends nothing the second time: every planned
event has a deterministic idempotency key, keys already in the journal are
skipped before their delta is written, and a delta object left behind by an
interrupted run is reused rather than written again (its id is derived from
its content). Run one loader at a time against a journal: two at once may
both write the same delta.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from chroma_journal.demo.cord import read_cord_dir, shipped_samples_dir
from chroma_journal.demo.embedder import Embedder, HashingEmbedder
from chroma_journal.demo.model import Receipt
from chroma_journal.demo.plan import DemoPlan, PlannedDelta, PlannedStep, plan_demo
from chroma_journal.demo.sroie import read_sroie_dir
from journal.base import Journal
from journal.deltas import delta_key, write_delta
from journal.events import DeltaMerge, NewEvent
from journal.objectstore import ObjectStore

log = structlog.get_logger(__name__)

#: Events per ``append_batch`` call. A DynamoDB transaction takes at most 100
#: actions and a keyed event needs two (the event item and its key item), so
#: 50 is the most that every backend accepts in one batch.
APPEND_BATCH = 50
_KEY_PREFIX = "demo:"

Progress = Callable[[int], None]


@dataclass
class CollectionSummary:
    """What the loader did to one collection."""

    records: int = 0
    events_planned: int = 0
    events_appended: int = 0
    deltas_written: int = 0


@dataclass
class LoadSummary:
    """The outcome of :func:`load_demo`; ``plan`` feeds
    :func:`chroma_journal.demo.expected.expected_final_records`."""

    receipts_read: int
    plan: DemoPlan
    collections: dict[str, CollectionSummary] = field(default_factory=dict)

    @property
    def events_appended(self) -> int:
        """New events over all collections (0 on a repeated run)."""
        return sum(one.events_appended for one in self.collections.values())

    @property
    def deltas_written(self) -> int:
        """Delta archives uploaded by this run."""
        return sum(one.deltas_written for one in self.collections.values())

    def describe(self) -> str:
        """A few lines for people: what was read, written and appended."""
        lines = [
            f"receipts read: {self.receipts_read}, deltas written: "
            f"{self.deltas_written}, events appended: {self.events_appended} "
            f"of {len(self.plan.steps)} planned"
        ]
        for name, stats in sorted(self.collections.items()):
            lines.append(
                f"  {name}: {stats.records} records, {stats.events_appended} of "
                f"{stats.events_planned} events appended"
            )
        return "\n".join(lines)


def read_receipts(
    cord_dir: Path | None = None,
    sroie_dir: Path | None = None,
    limit: int | None = None,
) -> list[Receipt]:
    """CORD receipts (the shipped samples by default), then SROIE ones when
    ``sroie_dir`` is given; ``limit`` applies to each source."""
    receipts = list(read_cord_dir(cord_dir or shipped_samples_dir(), limit))
    if sroie_dir is not None:
        receipts.extend(read_sroie_dir(sroie_dir, limit))
    return receipts


def load_demo(
    journal: Journal,
    objects: ObjectStore,
    *,
    cord_dir: Path | None = None,
    sroie_dir: Path | None = None,
    limit: int | None = None,
    embedder: Embedder | None = None,
    producer: str = "demo-loader",
    progress: Progress | None = None,
) -> LoadSummary:
    """Read the receipts, plan their events and append what is missing.

    ``progress`` is called after each append with the number of planned
    events that append handled (appended or found already present); the
    calls add up to ``len(summary.plan.steps)``.
    """
    receipts = read_receipts(cord_dir, sroie_dir, limit)
    plan = plan_demo(receipts, embedder or HashingEmbedder())
    return execute_plan(journal, objects, plan, producer=producer, progress=progress)


def execute_plan(
    journal: Journal,
    objects: ObjectStore,
    plan: DemoPlan,
    *,
    producer: str = "demo-loader",
    progress: Progress | None = None,
    batch_size: int = APPEND_BATCH,
) -> LoadSummary:
    """Write the plan's deltas and append its events, skipping those whose
    idempotency key the journal already holds."""
    summary = LoadSummary(receipts_read=plan.receipts, plan=plan)
    present: dict[str, set[str]] = {}
    for collection, steps in _batches(plan.steps, batch_size):
        stats = summary.collections.setdefault(collection, CollectionSummary())
        if collection not in present:
            present[collection] = _demo_keys(journal, collection)
        events = [
            _new_event(step, objects, stats, producer)
            for step in steps
            if step.idempotency_key not in present[collection]
        ]
        results = journal.append_batch(events)
        stats.events_appended += sum(not result.duplicate for result in results)
        _count_planned(stats, steps)
        if progress is not None:
            progress(len(steps))
        log.debug("demo_batch", collection=collection, steps=len(steps))
    log.info(
        "demo_loaded",
        receipts=plan.receipts,
        events_planned=len(plan.steps),
        events_appended=summary.events_appended,
        deltas_written=summary.deltas_written,
    )
    return summary


def _batches(
    steps: Sequence[PlannedStep], size: int
) -> Iterator[tuple[str, list[PlannedStep]]]:
    """Runs of consecutive steps of one collection, at most ``size`` long."""
    batch: list[PlannedStep] = []
    for step in steps:
        if batch and (step.collection != batch[0].collection or len(batch) >= size):
            yield batch[0].collection, batch
            batch = []
        batch.append(step)
    if batch:
        yield batch[0].collection, batch


def _demo_keys(journal: Journal, collection: str) -> set[str]:
    """Idempotency keys of demo events already in the collection's journal."""
    return {
        envelope.idempotency_key
        for envelope in journal.read(collection)
        if envelope.idempotency_key is not None
        and envelope.idempotency_key.startswith(_KEY_PREFIX)
    }


def _new_event(
    step: PlannedStep,
    objects: ObjectStore,
    stats: CollectionSummary,
    producer: str,
) -> NewEvent:
    payload = (
        _delta_payload(step, objects, stats)
        if isinstance(step, PlannedDelta)
        else step.payload
    )
    return NewEvent(
        collection=step.collection,
        payload=payload,
        idempotency_key=step.idempotency_key,
        producer=producer,
    )


def _delta_payload(
    step: PlannedDelta, objects: ObjectStore, stats: CollectionSummary
) -> DeltaMerge:
    """Write the delta, or reuse the one an interrupted run left behind."""
    key = delta_key(step.collection, step.delta_id)
    if objects.exists(key):
        # Same id means same content (the id holds a content digest), so the
        # stored archive is as good as a new one and keeps its sha256 valid.
        data = objects.get_bytes(key)
        log.debug("demo_delta_reused", key=key)
        return DeltaMerge(
            key=key,
            sha256=hashlib.sha256(data).hexdigest(),
            records=len(step.records),
            dimension=step.records.dimension if len(step.records) else None,
        )
    stats.deltas_written += 1
    return write_delta(objects, step.collection, step.records, delta_id=step.delta_id)


def _count_planned(stats: CollectionSummary, steps: Sequence[PlannedStep]) -> None:
    stats.events_planned += len(steps)
    stats.records += sum(
        len(step.records) for step in steps if isinstance(step, PlannedDelta)
    )
