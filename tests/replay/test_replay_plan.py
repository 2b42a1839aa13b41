"""Planning a rebuild: target, base and what the journal range holds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from replay_rig import T0, WORDS, Rig, word_records

from journal.events import DeltaMerge, Envelope, EventSkipped, SnapshotRequest
from pipeline.errors import JournalGapError
from replay.errors import BaseNotUsable, TargetOutOfRange
from replay.plan import EMPTY, Target, consecutive
from replay.sources import SnapshotInfo


class FakeSource:
    """Bases at given seqs; restoring is not needed to plan."""

    def __init__(self, *seqs: int) -> None:
        self.bases = [
            SnapshotInfo(f"v{seq}", seq, recorded_at=T0 + timedelta(seconds=seq))
            for seq in seqs
        ]

    def list(self, collection: str) -> list[SnapshotInfo]:
        return list(self.bases)

    def restore(self, collection: str, version: str, dest: Path) -> SnapshotInfo:
        raise AssertionError("planning never restores")


def test_plan_counts_events_deltas_and_their_sizes(caught_up: Rig) -> None:
    plan = caught_up.plan(Target(to_seq=9))

    assert (plan.head, plan.target_seq, plan.base, plan.events) == (17, 9, None, 9)
    assert plan.by_type == {
        "delta_merge": 4,
        "metadata_update": 1,
        "label_update": 2,
        "snapshot_request": 1,
        "records_delete": 1,
    }
    assert [delta.seq for delta in plan.deltas] == [1, 2, 5, 9]
    assert plan.records == 6 + 4 + 4 + 3
    assert all(delta.present and delta.size_bytes for delta in plan.deltas)
    assert plan.delta_bytes == sum(d.size_bytes or 0 for d in plan.deltas)
    assert plan.to_dict()["deltas"] == 4


def test_plan_reports_a_delta_missing_from_the_object_store(rig: Rig) -> None:
    missing = rig.delta(word_records(1))
    assert missing.payload.type == "delta_merge"
    rig.objects.delete(missing.payload.key)

    plan = rig.plan(Target())

    assert [delta.seq for delta in plan.missing_deltas] == [1]
    assert plan.to_dict()["missing_deltas"] == [missing.payload.key]


def test_target_beyond_the_head_is_refused(caught_up: Rig) -> None:
    with pytest.raises(TargetOutOfRange, match="head is 17"):
        caught_up.plan(Target(to_seq=18))


def test_target_cannot_be_a_seq_and_a_time() -> None:
    with pytest.raises(ValueError, match="not both"):
        Target(to_seq=3, at=T0)


def test_time_before_the_first_event_targets_an_empty_collection(
    caught_up: Rig,
) -> None:
    plan = caught_up.plan(Target(at=T0))

    assert (plan.target_seq, plan.events, plan.deltas) == (0, 0, [])


def test_time_picks_the_last_event_recorded_at_or_before_it(caught_up: Rig) -> None:
    exactly = caught_up.plan(Target(at=T0 + timedelta(seconds=7)))
    between = caught_up.plan(Target(at=T0 + timedelta(seconds=7.9)))
    naive = caught_up.plan(Target(at=(T0 + timedelta(seconds=7)).replace(tzinfo=None)))

    assert exactly.target_seq == between.target_seq == naive.target_seq == 7
    assert "at or before" in exactly.target_reason


def test_latest_base_is_the_newest_at_or_before_the_target(caught_up: Rig) -> None:
    source = FakeSource(3, 8, 12)

    assert caught_up.plan(Target(to_seq=10), sources=[source]).base_seq == 8
    assert caught_up.plan(Target(to_seq=12), sources=[source]).base_seq == 12
    assert caught_up.plan(Target(to_seq=2), sources=[source]).base is None
    planned = caught_up.plan(Target(to_seq=10), sources=[source])
    assert planned.events == 2 and planned.source is source


def test_empty_base_ignores_snapshots(caught_up: Rig) -> None:
    plan = caught_up.plan(Target(to_seq=10), sources=[FakeSource(8)], base=EMPTY)

    assert plan.base is None and plan.events == 10


def test_named_base_is_looked_up_in_every_source(caught_up: Rig) -> None:
    sources = [FakeSource(3), FakeSource(5)]

    plan = caught_up.plan(Target(to_seq=10), sources=sources, base="v5")

    assert plan.base is not None and plan.base.version == "v5"
    assert plan.source is sources[1]


def test_named_base_after_the_target_or_unknown_is_refused(caught_up: Rig) -> None:
    with pytest.raises(BaseNotUsable, match="after the target"):
        caught_up.plan(Target(to_seq=4), sources=[FakeSource(8)], base="v8")
    with pytest.raises(BaseNotUsable, match="no snapshot or version"):
        caught_up.plan(Target(), sources=[FakeSource(8)], base="v9")


def test_skips_are_collected_from_the_whole_journal_but_only_in_range(
    rig: Rig,
) -> None:
    for _ in range(4):
        rig.append(SnapshotRequest())
    rig.append(EventSkipped(skipped_seq=1, reason="before the base"))
    rig.append(EventSkipped(skipped_seq=3, reason="in range"))
    rig.append(EventSkipped(skipped_seq=6, reason="after the target"))

    plan = rig.plan(Target(to_seq=4), sources=[FakeSource(2)])

    assert plan.skipped == frozenset({3})
    assert plan.to_dict()["skipped_seqs"] == [3]


def test_a_hole_in_the_journal_stops_the_read(rig: Rig) -> None:
    events = [rig.append(SnapshotRequest()) for _ in range(4)]
    holed: list[Envelope] = [events[0], events[1], events[3]]

    with pytest.raises(JournalGapError) as gap:
        list(consecutive(holed, 0))

    assert gap.value.missing_seq == 3
    assert gap.value.collection == WORDS


@pytest.mark.parametrize("count", [3, 25])
def test_delta_sizes_are_listed_for_few_and_many_deltas(rig: Rig, count: int) -> None:
    for index in range(count):
        key = f"{WORDS}/deltas/d{index:03d}/delta.tar.gz"
        if index != 1:  # one is missing
            rig.objects.put_bytes(key, b"x" * (index + 1))
        rig.append(DeltaMerge(key=key, sha256="0" * 64, records=2))

    plan = rig.plan(Target())

    assert [delta.size_bytes for delta in plan.deltas[:3]] == [1, None, 3]
    assert [delta.seq for delta in plan.missing_deltas] == [2]
    assert plan.records == 2 * count
