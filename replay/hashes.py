"""Per-record hashes of a collection, to compute its digest and to name the
records in which two collections differ.

The hash of a record and the digest over them are those of
:mod:`pipeline.digest` (the consumer writes that digest into every
manifest), so a rebuild's digest compares with a live version's.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.digest import RecordHashes


@dataclass(frozen=True)
class RecordDiff:
    """How two collections differ, with up to ``sample`` ids of each kind
    (sorted, so the first differing ids come first)."""

    only_left: list[str]
    only_right: list[str]
    changed: list[str]
    only_left_count: int
    only_right_count: int
    changed_count: int

    @property
    def total(self) -> int:
        """Ids present on one side only or stored differently."""
        return self.only_left_count + self.only_right_count + self.changed_count

    def sample_ids(self, limit: int) -> list[str]:
        """The first ``limit`` differing ids of any kind, sorted."""
        return sorted({*self.only_left, *self.only_right, *self.changed})[:limit]


class RecordIndex(RecordHashes):
    """Record hashes by id, which can also name where two collections differ."""

    def diff(self, other: RecordIndex, sample: int = 10) -> RecordDiff:
        """Where this index (left) and ``other`` (right) differ."""
        left, right = self._hashes, other._hashes
        only_left = sorted(left.keys() - right.keys())
        only_right = sorted(right.keys() - left.keys())
        changed = sorted(
            record_id
            for record_id in left.keys() & right.keys()
            if left[record_id] != right[record_id]
        )
        return RecordDiff(
            only_left=only_left[:sample],
            only_right=only_right[:sample],
            changed=changed[:sample],
            only_left_count=len(only_left),
            only_right_count=len(only_right),
            changed_count=len(changed),
        )
