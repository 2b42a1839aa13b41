"""Which Kinesis position of a shard is covered by promoted data.

The KCL checkpoint says "every record up to here is done"; a restart resumes
after it. Here "done" means its event is in a promoted version (its ``seq``
is at or below the collection's ``applied_seq``), or the record was
malformed and passed over (the journal fills the gap it leaves). The
checkpoint may therefore never pass the first record that is not done, even
when later records of other collections are::

    records     r1(lines 4)  r2(words 9)  r3(lines 5)  r4(words 10)
    applied     lines=4      words=8 (blocked at 9)
    checkpoint  r1 ──────────┘  (r2 is pending; r3 and r4 wait behind it)

Pending records are kept in arrival order until their collection's
``applied_seq`` reaches them: a collection that stays blocked costs one
small entry per record of its own, and nothing for other collections.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Position:
    """A record's place in its shard."""

    sequence_number: str
    sub_sequence_number: int = 0


@dataclass(frozen=True)
class TrackedRecord:
    """One delivered record: where it is and which event it carried.

    ``collection`` and ``seq`` are None for a record that could not be
    decoded; such a record is done as soon as it is seen.
    """

    position: Position
    collection: str | None = None
    seq: int | None = None


@dataclass(frozen=True)
class _Pending:
    collection: str
    seq: int
    before: Position | None


@dataclass
class CheckpointTracker:
    """Tracks delivered records and answers where it is safe to checkpoint.

    ``checkpointed`` starts at the position KCL resumed from (None on a fresh
    shard), so a restart never checkpoints backwards.
    """

    checkpointed: Position | None = None
    _last_seen: Position | None = None
    _pending: list[_Pending] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._last_seen = self.checkpointed

    def add(self, records: list[TrackedRecord], applied: Mapping[str, int]) -> None:
        """Note a batch, given each collection's ``applied_seq`` after it.

        A collection missing from ``applied`` is taken to have applied
        nothing in this batch (it failed).
        """
        for record in records:
            collection, seq = record.collection, record.seq
            if (
                collection is not None
                and seq is not None
                and seq > applied.get(collection, -1)
            ):
                self._pending.append(_Pending(collection, seq, self._last_seen))
            self._last_seen = record.position

    def settle(self, applied_seq: Callable[[str], int | None]) -> None:
        """Drop pending records whose collection has now applied them.

        ``applied_seq`` returns None when it cannot tell; those records stay.
        """
        cache: dict[str, int | None] = {}
        remaining = []
        for pending in self._pending:
            if pending.collection not in cache:
                cache[pending.collection] = applied_seq(pending.collection)
            applied = cache[pending.collection]
            if applied is None or pending.seq > applied:
                remaining.append(pending)
        self._pending = remaining

    @property
    def pending_collections(self) -> list[str]:
        """Collections with records not yet covered, sorted."""
        return sorted({pending.collection for pending in self._pending})

    @property
    def pending_count(self) -> int:
        """How many delivered records are not yet covered."""
        return len(self._pending)

    @property
    def safe(self) -> Position | None:
        """The furthest position every record up to which is done."""
        if self._pending:
            return self._pending[0].before
        return self._last_seen

    def due(self) -> Position | None:
        """The safe position when it is past the last checkpoint, else None."""
        safe = self.safe
        if safe is None or safe == self.checkpointed:
            return None
        return safe

    def mark_checkpointed(self, position: Position) -> None:
        """Record that KCL accepted a checkpoint at ``position``."""
        self.checkpointed = position
