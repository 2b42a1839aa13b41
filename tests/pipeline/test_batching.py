"""Cutting batches: group commit limits, duplicates and gaps."""

from __future__ import annotations

import pytest
from pipeline_rig import T0

from journal.events import DeltaMerge, Envelope, Payload, SnapshotRequest
from pipeline.batching import take_batch
from pipeline.errors import JournalGapError


def env(seq: int, payload: Payload | None = None) -> Envelope:
    return Envelope(
        collection="lines",
        seq=seq,
        event_id=f"e{seq}",
        recorded_at=T0,
        producer="test",
        payload=payload or SnapshotRequest(),
    )


def delta(seq: int, records: int) -> Envelope:
    return env(
        seq,
        DeltaMerge(
            key=f"lines/deltas/{seq}/d.tar.gz", sha256="a" * 64, records=records
        ),
    )


def seqs(events: list[Envelope]) -> list[int]:
    return [e.seq for e in events]


def test_a_batch_closes_at_the_event_limit() -> None:
    batch = take_batch(
        [env(s) for s in range(4, 10)], "lines", 3, max_events=3, max_records=10
    )

    assert seqs(batch.events) == [4, 5, 6]
    assert batch.full


def test_a_batch_closes_before_the_delta_that_would_exceed_the_record_limit() -> None:
    events = [delta(1, 4), env(2), delta(3, 5), delta(4, 1)]

    batch = take_batch(events, "lines", 0, max_events=10, max_records=8)

    assert seqs(batch.events) == [1, 2]
    assert batch.full


def test_a_delta_larger_than_the_record_limit_is_a_batch_of_its_own() -> None:
    batch = take_batch([delta(1, 50), env(2)], "lines", 0, max_events=10, max_records=8)

    assert seqs(batch.events) == [1]


def test_a_batch_of_everything_waiting_is_not_full() -> None:
    batch = take_batch([env(1), env(2)], "lines", 0, max_events=10, max_records=8)

    assert seqs(batch.events) == [1, 2]
    assert not batch.full


def test_events_at_or_below_the_applied_seq_are_skipped() -> None:
    events = [env(2), env(3), env(3), env(4), env(4), env(5)]

    batch = take_batch(events, "lines", 3, max_events=10, max_records=8)

    assert seqs(batch.events) == [4, 5]


@pytest.mark.parametrize("delivered", [[5, 6], [6]])
def test_a_missing_next_seq_is_a_gap_error(delivered: list[int]) -> None:
    with pytest.raises(JournalGapError) as raised:
        take_batch(
            [env(s) for s in delivered], "lines", 3, max_events=10, max_records=8
        )

    assert raised.value.missing_seq == 4
    assert raised.value.collection == "lines"


def test_a_batch_stops_before_a_missing_seq() -> None:
    events = [env(s) for s in (4, 5, 7, 8)]

    batch = take_batch(events, "lines", 3, max_events=10, max_records=8)
    assert seqs(batch.events) == [4, 5]
    with pytest.raises(JournalGapError) as raised:
        take_batch(events, "lines", 5, max_events=10, max_records=8)
    assert raised.value.missing_seq == 6
