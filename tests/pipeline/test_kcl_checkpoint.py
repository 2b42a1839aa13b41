"""The checkpoint tracker never passes a record that promoted data lacks."""

from __future__ import annotations

from pipeline.kcl_checkpoint import CheckpointTracker, Position, TrackedRecord


def rec(n: int, collection: str | None = None, seq: int | None = None) -> TrackedRecord:
    return TrackedRecord(Position(str(n)), collection, seq)


def test_all_applied_makes_last_record_due() -> None:
    tracker = CheckpointTracker()
    tracker.add([rec(1, "lines", 1), rec(2, "words", 1)], {"lines": 1, "words": 1})
    assert tracker.due() == Position("2")


def test_failed_collection_stops_checkpoint_before_its_first_record() -> None:
    tracker = CheckpointTracker()
    records = [rec(1, "lines", 4), rec(2, "words", 9), rec(3, "lines", 5)]
    tracker.add(records, {"lines": 5, "words": 8})
    assert tracker.due() == Position("1")
    assert tracker.pending_collections == ["words"]


def test_failure_on_first_record_since_resume_checkpoints_nothing() -> None:
    tracker = CheckpointTracker(Position("10"))
    tracker.add([rec(11, "words", 3), rec(12, "lines", 1)], {"lines": 1})
    assert tracker.due() is None


def test_settle_releases_checkpoint_once_collection_catches_up() -> None:
    tracker = CheckpointTracker()
    tracker.add([rec(1, "words", 9), rec(2, "lines", 1)], {"lines": 1, "words": 8})
    assert tracker.due() is None
    tracker.settle(lambda collection: 9)
    assert tracker.due() == Position("2")
    assert tracker.pending_count == 0


def test_settle_keeps_records_when_applied_seq_is_unknown() -> None:
    tracker = CheckpointTracker()
    tracker.add([rec(1, "lines", 1), rec(2, "words", 2)], {"lines": 1})
    tracker.settle(lambda collection: None)
    assert tracker.due() == Position("1")


def test_undecodable_records_count_as_done() -> None:
    tracker = CheckpointTracker()
    tracker.add([rec(1, "lines", 1), rec(2)], {"lines": 1})
    assert tracker.due() == Position("2")


def test_nothing_due_after_checkpointing_the_safe_position() -> None:
    tracker = CheckpointTracker()
    tracker.add([rec(1, "lines", 1)], {"lines": 1})
    tracker.mark_checkpointed(Position("1"))
    assert tracker.due() is None
