"""Cutting the journal into batches (group commit) without skipping a seq.

The consumer trusts only ``seq`` (DESIGN section 5): events at or below the
applied seq are skipped, the next one must be exactly ``applied + 1``, and a
missing seq stops the batch with :class:`~pipeline.errors.JournalGapError`
rather than being stepped over.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from journal.base import Journal
from journal.events import DeltaMerge, Envelope
from pipeline.errors import JournalGapError


@dataclass(frozen=True)
class Batch:
    """Consecutive events of one collection; ``full`` when a limit closed it
    (more events were waiting)."""

    events: list[Envelope]
    full: bool

    @property
    def first_seq(self) -> int:
        """Seq of the first event."""
        return self.events[0].seq

    @property
    def last_seq(self) -> int:
        """Seq of the last event."""
        return self.events[-1].seq


def delta_records(envelope: Envelope) -> int:
    """How many records the event's delta carries (0 for other kinds)."""
    payload = envelope.payload
    return payload.records if isinstance(payload, DeltaMerge) else 0


def take_batch(
    events: Iterable[Envelope],
    collection: str,
    applied_seq: int,
    *,
    max_events: int,
    max_records: int,
) -> Batch:
    """The next batch from ``events`` (in seq order) after ``applied_seq``.

    The batch closes before the event that would exceed ``max_events`` or
    ``max_records`` delta records (a single delta larger than
    ``max_records`` forms a batch of its own), and before a missing seq;
    :class:`JournalGapError` when the very next seq is missing.
    """
    batch: list[Envelope] = []
    records = 0
    expected = applied_seq + 1
    for envelope in events:
        if envelope.seq < expected:
            continue  # a duplicate delivery
        if envelope.seq != expected:
            if batch:
                return Batch(batch, full=True)  # the next batch reports the gap
            raise JournalGapError(collection, expected)
        size = delta_records(envelope)
        if batch and (len(batch) >= max_events or records + size > max_records):
            return Batch(batch, full=True)
        batch.append(envelope)
        records += size
        expected += 1
    return Batch(batch, full=len(batch) >= max_events)


def with_gaps_filled(
    journal: Journal,
    collection: str,
    applied_seq: int,
    given: Mapping[int, Envelope],
) -> Iterator[Envelope]:
    """The events after ``applied_seq`` up to the highest given seq: the given
    envelopes where present, the journal's for every seq in between."""
    if not given:
        return
    target = max(given)
    seq = applied_seq + 1
    while seq <= target:
        if seq in given:
            yield given[seq]
            seq += 1
            continue
        upto = min((s for s in given if s > seq), default=target + 1) - 1
        for envelope in journal.read(collection, after=seq - 1, upto=upto):
            yield envelope
            seq = envelope.seq + 1
        if seq <= upto:
            return  # the journal lacks it: take_batch reports the gap
