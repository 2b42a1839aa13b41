"""What a rebuild will do: its target, its base and the journal it reads.

Planning reads the journal once, from the base's ``applied_seq`` to the
head, and nothing else (delta sizes are listed, not downloaded). It reads
past the target on purpose: an operator's ``event_skipped`` is appended
after the event it skips, possibly after the target, and the live consumer
honours it; so must a rebuild (DESIGN section 8). Skips of events at or
before the base are irrelevant, since the base already reflects them.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from journal.base import Journal
from journal.events import DeltaMerge, Envelope, EventSkipped
from journal.objectstore import ObjectStore
from pipeline.errors import JournalGapError
from replay.errors import BaseNotUsable, TargetOutOfRange
from replay.sources import SnapshotInfo, SnapshotSource, newest_at_or_before

#: ``--from`` values with a meaning of their own; anything else is a version.
LATEST = "latest"
EMPTY = "empty"


@dataclass(frozen=True)
class Target:
    """The point to rebuild to: a seq, a time, or (neither) the head."""

    to_seq: int | None = None
    at: datetime | None = None

    def __post_init__(self) -> None:
        if self.to_seq is not None and self.at is not None:
            raise ValueError("give a target seq or a time, not both")
        if self.to_seq is not None and self.to_seq < 0:
            raise ValueError("the target seq cannot be negative")


@dataclass(frozen=True)
class DeltaRead:
    """One delta the rebuild downloads; ``size_bytes`` is None when not
    listed, and ``present`` False when the object store lacks it."""

    seq: int
    key: str
    records: int
    size_bytes: int | None = None
    present: bool | None = None


@dataclass(frozen=True)
class ReplayPlan:
    """Everything a rebuild needs to know before it starts."""

    collection: str
    head: int
    target_seq: int
    target_reason: str
    base: SnapshotInfo | None
    events: int
    by_type: dict[str, int]
    skips: dict[int, EventSkipped]
    deltas: list[DeltaRead]
    source: SnapshotSource | None = field(default=None, repr=False, compare=False)

    @property
    def skipped(self) -> frozenset[int]:
        """Seqs in the range that an ``event_skipped`` covers."""
        return frozenset(self.skips)

    @property
    def base_seq(self) -> int:
        """The seq the base already reflects (0 when starting empty)."""
        return self.base.applied_seq if self.base else 0

    @property
    def records(self) -> int:
        """Delta records the rebuild merges."""
        return sum(delta.records for delta in self.deltas)

    @property
    def delta_bytes(self) -> int:
        """Bytes of the listed deltas."""
        return sum(delta.size_bytes or 0 for delta in self.deltas)

    @property
    def missing_deltas(self) -> list[DeltaRead]:
        """Deltas the object store does not hold (the rebuild would fail)."""
        return [delta for delta in self.deltas if delta.present is False]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        base = self.base
        return {
            "collection": self.collection,
            "journal_head": self.head,
            "target_seq": self.target_seq,
            "target_reason": self.target_reason,
            "base": None
            if base is None
            else {
                "version": base.version,
                "origin": base.origin,
                "applied_seq": base.applied_seq,
                "recorded_at": base.recorded_at.isoformat()
                if base.recorded_at
                else None,
                "size_bytes": base.size_bytes,
            },
            "events": self.events,
            "events_by_type": dict(sorted(self.by_type.items())),
            "skipped_seqs": sorted(self.skipped),
            "deltas": len(self.deltas),
            "delta_records": self.records,
            "delta_bytes": self.delta_bytes,
            "missing_deltas": [delta.key for delta in self.missing_deltas],
        }


def plan_rebuild(
    journal: Journal,
    collection: str,
    target: Target,
    sources: Sequence[SnapshotSource],
    *,
    base: str = LATEST,
    objects: ObjectStore | None = None,
) -> ReplayPlan:
    """Plan a rebuild of ``collection`` to ``target``.

    ``base`` is ``latest`` (the newest base at or before the target in
    ``sources[0]``, else empty), ``empty``, or a version id looked up in
    every source in turn. With ``objects``, delta sizes are listed.
    """
    head = journal.head(collection)
    target_seq, reason = resolve_target(journal, collection, target, head)
    chosen, source = choose_base(collection, base, target_seq, sources)
    scan = _scan(journal, collection, chosen.applied_seq if chosen else 0, target_seq)
    deltas = _sized(scan.deltas, objects) if objects else scan.deltas
    return ReplayPlan(
        collection=collection,
        head=head,
        target_seq=target_seq,
        target_reason=reason,
        base=chosen,
        events=scan.events,
        by_type=dict(scan.by_type),
        skips=scan.skips,
        deltas=deltas,
        source=source,
    )


def resolve_target(
    journal: Journal, collection: str, target: Target, head: int
) -> tuple[int, str]:
    """The target seq and, for people, how it was chosen."""
    if target.at is not None:
        moment = target.at if target.at.tzinfo else target.at.replace(tzinfo=UTC)
        seq = journal.last_seq_at(collection, moment)
        return seq, f"last event recorded at or before {moment.isoformat()}"
    if target.to_seq is None:
        return head, "journal head"
    if target.to_seq > head:
        raise TargetOutOfRange(collection, target.to_seq, head)
    return target.to_seq, "requested seq"


def choose_base(
    collection: str, base: str, target_seq: int, sources: Sequence[SnapshotSource]
) -> tuple[SnapshotInfo | None, SnapshotSource | None]:
    """The base to restore and the source holding it (None, None: empty)."""
    if base == EMPTY:
        return None, None
    if base == LATEST:
        if not sources:
            return None, None
        newest = newest_at_or_before(sources[0].list(collection), target_seq)
        return (newest, sources[0]) if newest else (None, None)
    for source in sources:
        for info in source.list(collection):
            if info.version != base:
                continue
            if info.applied_seq > target_seq:
                raise BaseNotUsable(
                    collection,
                    base,
                    f"it holds seq {info.applied_seq}, after the target {target_seq}",
                )
            return info, source
    raise BaseNotUsable(collection, base, "no snapshot or version has that id")


@dataclass
class _Scan:
    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    skips: dict[int, EventSkipped] = field(default_factory=dict)
    deltas: list[DeltaRead] = field(default_factory=list)


def _scan(journal: Journal, collection: str, base_seq: int, target_seq: int) -> _Scan:
    """Read the journal after the base up to its head: count the events up to
    the target and collect every skip of an event in the range."""
    scan = _Scan()
    for envelope in consecutive(journal.read(collection, after=base_seq), base_seq):
        payload = envelope.payload
        if isinstance(payload, EventSkipped):
            # The first skip of a seq counts, as for the consumer.
            scan.skips.setdefault(payload.skipped_seq, payload)
        if envelope.seq > target_seq:
            continue
        scan.events += 1
        scan.by_type[payload.type] += 1
        if isinstance(payload, DeltaMerge):
            scan.deltas.append(DeltaRead(envelope.seq, payload.key, payload.records))
    in_range = range(base_seq + 1, target_seq + 1)
    scan.skips = {seq: skip for seq, skip in scan.skips.items() if seq in in_range}
    scan.deltas = [delta for delta in scan.deltas if delta.seq not in scan.skips]
    return scan


def consecutive(events: Iterable[Envelope], after: int) -> Iterable[Envelope]:
    """``events`` checked to run ``after + 1, after + 2, ...`` without a gap
    (the journal promises it; a rebuild must never step over a hole)."""
    expected = after + 1
    for envelope in events:
        if envelope.seq != expected:
            raise JournalGapError(envelope.collection, expected)
        yield envelope
        expected += 1


#: Up to this many deltas are sized one listing each; more share one listing
#: of their common prefix (one request per 1,000 keys on S3).
_LIST_EACH_UP_TO = 20


def _sized(deltas: list[DeltaRead], objects: ObjectStore) -> list[DeltaRead]:
    """The deltas with their sizes, and whether the store holds them."""
    keys = [delta.key for delta in deltas]
    if len(keys) <= _LIST_EACH_UP_TO:
        prefixes = keys
    else:
        common = posixpath.commonpath([posixpath.dirname(key) for key in keys])
        prefixes = [f"{common}/" if common else ""]
    sizes = {
        info.key: info.size for prefix in prefixes for info in objects.list(prefix)
    }
    return [
        DeltaRead(d.seq, d.key, d.records, sizes.get(d.key), d.key in sizes)
        for d in deltas
    ]
