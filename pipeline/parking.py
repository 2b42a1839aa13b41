"""Parked and skipped events (DESIGN section 8).

An event that still fails after its retries is *parked*: an
``event_parked`` record goes into the journal, so the decision is part of
the history, and the collection stops at it. An operator either fixes the
cause and resumes (the consumer tries the event again) or *skips* it with an
``event_skipped`` record. A skip is appended after the event it skips, so
its own seq is larger::

    seq:   41 delta_merge (fails) ... 57 event_parked(41) ... 63 event_skipped(41)
    applied_seq stops at 40 ───────────────────────────────────▶ then 41 is a no-op

The consumer and replay must agree on which events are skipped, or a rebuild
would differ from the live collection. Both therefore look at every skip in
the journal after the applied seq before applying anything: replay collects
the whole journal's skips first; the consumer keeps a :class:`SkipIndex`
that scans the unapplied part of the journal once, incrementally.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime

import structlog

from journal.base import Journal
from journal.errors import UnreadableEvent
from journal.events import Envelope, EventParked, EventSkipped, NewEvent

log = structlog.get_logger(__name__)


def neutralized(envelope: Envelope, skip: EventSkipped) -> Envelope:
    """``envelope`` with its payload replaced by the skip that covers it, so
    that it changes no records but still advances ``applied_seq``."""
    return envelope.model_copy(update={"payload": skip})


def honour_skips(
    envelopes: Iterable[Envelope], skips: Mapping[int, EventSkipped]
) -> Iterator[Envelope]:
    """The envelopes with every skipped one neutralized."""
    for envelope in envelopes:
        skip = skips.get(envelope.seq)
        yield envelope if skip is None else neutralized(envelope, skip)


def unreadable_placeholder(error: UnreadableEvent, skip: EventSkipped) -> Envelope:
    """Stands in for a skipped event that cannot even be decoded, so that
    ``applied_seq`` can move past it."""
    return Envelope(
        collection=error.collection,
        seq=error.seq,
        event_id=f"unreadable-{error.seq}",
        recorded_at=datetime.now(UTC),
        producer="chroma-journal",
        payload=skip,
    )


def parked_event(
    collection: str, seq: int, error: str, attempts: int, *, producer: str
) -> NewEvent:
    """The ``event_parked`` record for a failing event; its idempotency key
    makes a restarted consumer that fails again append nothing new."""
    return NewEvent(
        collection=collection,
        payload=EventParked(parked_seq=seq, error=error[:2000], attempts=attempts),
        idempotency_key=f"event_parked:{seq}",
        producer=producer,
    )


def skip_event(collection: str, seq: int, reason: str, *, producer: str) -> NewEvent:
    """The ``event_skipped`` record an operator appends."""
    return NewEvent(
        collection=collection,
        payload=EventSkipped(skipped_seq=seq, reason=reason),
        idempotency_key=f"event_skipped:{seq}",
        producer=producer,
    )


class SkipIndex:
    """The skips and parks recorded in each collection's journal after a
    floor (the applied seq), kept up to date by reading only new events."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._scanned: dict[str, int] = {}
        self._skips: dict[str, dict[int, EventSkipped]] = {}
        self._parked: dict[str, dict[int, EventParked]] = {}

    def skips(self, collection: str, floor: int) -> dict[int, EventSkipped]:
        """Skips of seqs above ``floor``, as recorded up to the journal head."""
        self._refresh(collection, floor)
        return dict(self._skips.get(collection, {}))

    def parked(self, collection: str, floor: int) -> dict[int, EventParked]:
        """Parked seqs above ``floor`` that no skip covers."""
        self._refresh(collection, floor)
        skipped = self._skips.get(collection, {})
        return {
            seq: park
            for seq, park in self._parked.get(collection, {}).items()
            if seq not in skipped
        }

    def _refresh(self, collection: str, floor: int) -> None:
        # Skips and parks always carry a seq larger than the event they name,
        # so nothing at or below the floor can matter.
        start = max(self._scanned.get(collection, floor), floor)
        skips = self._skips.setdefault(collection, {})
        parked = self._parked.setdefault(collection, {})
        last = start
        while True:
            try:
                for envelope in self._journal.read(collection, after=last):
                    payload = envelope.payload
                    if isinstance(payload, EventSkipped):
                        skips.setdefault(payload.skipped_seq, payload)
                    elif isinstance(payload, EventParked):
                        parked.setdefault(payload.parked_seq, payload)
                    last = envelope.seq
                break
            except UnreadableEvent as error:
                # Not a skip or park we can see; the consumer stops there.
                last = error.seq
        self._scanned[collection] = last
        for table in (skips, parked):
            for seq in [seq for seq in table if seq <= floor]:
                del table[seq]
