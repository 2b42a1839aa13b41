"""The journal contract: every backend must pass these unchanged.

Only the :class:`journal.base.Journal` API and the fixtures from
``conftest.py`` are used here, never a backend's internals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from journal.base import Journal, Publisher
from journal.errors import EventTooLarge, JournalError
from journal.events import Envelope, MetadataUpdate, NewEvent, SnapshotRequest

if TYPE_CHECKING:
    from conftest import SteppingClock


def event(
    collection: str = "lines", key: str | None = None, reason: str = ""
) -> NewEvent:
    """A small event; ``reason`` makes events distinguishable."""
    return NewEvent(
        collection=collection,
        payload=SnapshotRequest(reason=reason),
        idempotency_key=key,
        producer="tests",
    )


def huge_event(collection: str = "lines") -> NewEvent:
    """An event far above any backend's item limit."""
    return NewEvent(
        collection=collection,
        payload=MetadataUpdate(
            image_id="img", receipt_id=1, changes={"merchant_name": "x" * 500_000}
        ),
    )


def seqs(journal: Journal, collection: str = "lines", **kwargs: int) -> list[int]:
    return [envelope.seq for envelope in journal.read(collection, **kwargs)]


class RecordingPublisher(Publisher):
    """Remembers every call."""

    def __init__(self) -> None:
        self.calls: list[list[Envelope]] = []

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.calls.append(list(envelopes))


# -- numbering ----------------------------------------------------------------


def test_appends_get_gapless_seq_from_one(journal: Journal) -> None:
    results = [journal.append(event(reason=str(i))) for i in range(5)]
    results += journal.append_batch([event(reason=str(i)) for i in range(5, 8)])

    assert [result.seq for result in results] == list(range(1, 9))
    assert not any(result.duplicate for result in results)
    assert journal.head("lines") == 8
    assert seqs(journal) == list(range(1, 9))


def test_collections_are_numbered_independently(journal: Journal) -> None:
    journal.append(event("lines"))
    journal.append(event("lines"))
    first_word = journal.append(event("words"))

    assert first_word.seq == 1
    assert journal.head("lines") == 2
    assert journal.head("words") == 1


def test_read_returns_what_append_stored(journal: Journal) -> None:
    stored = journal.append(event(key="k1", reason="hello")).envelope

    (read,) = journal.read("lines")

    assert read == stored
    assert read.payload == SnapshotRequest(reason="hello")
    assert read.idempotency_key == "k1"
    assert read.producer == "tests"


def test_another_instance_sees_the_same_journal(
    make_journal: Callable[..., Journal],
) -> None:
    writer = make_journal()
    writer.append_batch([event(reason="a"), event(reason="b")])

    reader = make_journal()

    assert reader.head("lines") == 2
    assert reader.append(event()).seq == 3


# -- idempotency --------------------------------------------------------------


def test_append_with_existing_key_returns_first_envelope_and_writes_nothing(
    journal: Journal, clock: SteppingClock
) -> None:
    first = journal.append(event(key="stream-record-1", reason="first"))
    journal.append(event(reason="other"))
    clock.advance(60)

    again = journal.append(event(key="stream-record-1", reason="retry"))

    assert again.duplicate
    assert again.envelope == first.envelope
    assert again.seq == 1
    assert journal.head("lines") == 2
    assert [e.payload for e in journal.read("lines", upto=1)] == [
        SnapshotRequest(reason="first")
    ]


def test_key_repeated_within_a_batch_is_a_duplicate_of_its_first_use(
    journal: Journal,
) -> None:
    results = journal.append_batch(
        [event(key="a", reason="1"), event(key="b"), event(key="a", reason="2")]
    )

    assert [(result.seq, result.duplicate) for result in results] == [
        (1, False),
        (2, False),
        (1, True),
    ]
    assert results[2].envelope == results[0].envelope
    assert journal.head("lines") == 2


def test_batch_mixing_new_and_seen_keys_writes_only_the_new(
    journal: Journal,
) -> None:
    journal.append(event(key="old"))

    results = journal.append_batch([event(key="new"), event(key="old"), event()])

    assert [(result.seq, result.duplicate) for result in results] == [
        (2, False),
        (1, True),
        (3, False),
    ]
    assert seqs(journal) == [1, 2, 3]


def test_idempotency_keys_are_scoped_per_collection(journal: Journal) -> None:
    journal.append(event("lines", key="same"))

    words = journal.append(event("words", key="same"))

    assert not words.duplicate
    assert words.seq == 1


# -- atomicity ----------------------------------------------------------------


def test_batch_with_one_oversized_event_writes_nothing(journal: Journal) -> None:
    journal.append(event())

    with pytest.raises(EventTooLarge) as caught:
        journal.append_batch([event(), huge_event(), event()])

    assert caught.value.size > caught.value.limit
    assert caught.value.collection == "lines"
    assert journal.head("lines") == 1


def test_batch_failing_midway_writes_nothing(
    journal: Journal, clock: SteppingClock
) -> None:
    journal.append(event(key="before"))
    clock.fail_after = clock.calls + 2

    with pytest.raises(RuntimeError, match="clock failure"):
        journal.append_batch([event(key=str(i)) for i in range(4)])

    clock.fail_after = None
    assert journal.head("lines") == 1
    assert not journal.append(event(key="0")).duplicate


def test_batch_mixing_collections_is_refused(journal: Journal) -> None:
    with pytest.raises(JournalError, match="one collection"):
        journal.append_batch([event("lines"), event("words")])

    assert journal.collections() == []


def test_empty_batch_returns_nothing(journal: Journal) -> None:
    assert journal.append_batch([]) == []
    assert journal.collections() == []


# -- reading ------------------------------------------------------------------


def test_read_range_excludes_after_and_includes_upto(journal: Journal) -> None:
    journal.append_batch([event(reason=str(i)) for i in range(10)])

    assert seqs(journal, after=3, upto=6) == [4, 5, 6]
    assert seqs(journal, after=8) == [9, 10]
    assert seqs(journal, upto=2) == [1, 2]
    assert seqs(journal, after=10) == []
    assert seqs(journal, after=5, upto=5) == []
    assert seqs(journal, after=7, upto=100) == [8, 9, 10]


def test_read_spans_many_pages_in_order(journal: Journal) -> None:
    for start in range(0, 1300, 100):
        journal.append_batch([event(reason=str(i)) for i in range(start, start + 100)])

    envelopes = list(journal.read("lines", after=50))

    assert [e.seq for e in envelopes] == list(range(51, 1301))
    assert [e.payload.reason for e in envelopes[:2]] == ["50", "51"]  # type: ignore[union-attr]


def test_unknown_collection_is_empty(journal: Journal) -> None:
    journal.append(event("lines"))

    assert journal.head("receipts") == 0
    assert list(journal.read("receipts")) == []


def test_collections_are_listed_sorted(journal: Journal) -> None:
    for name in ["words", "lines", "alpha-1", "receipts"]:
        journal.append(event(name))

    assert journal.collections() == ["alpha-1", "lines", "receipts", "words"]


# -- publishing and time ------------------------------------------------------


def test_publisher_gets_only_fresh_envelopes(
    make_journal: Callable[..., Journal],
) -> None:
    publisher = RecordingPublisher()
    journal = make_journal(publisher=publisher)

    journal.append_batch([event(key="a"), event(key="b")])
    journal.append(event(key="a"))
    journal.append_batch([event(key="b"), event(key="c")])

    assert [[e.seq for e in call] for call in publisher.calls] == [[1, 2], [3]]
    assert publisher.calls[1][0].idempotency_key == "c"


def test_publisher_is_not_called_when_the_append_fails(
    make_journal: Callable[..., Journal],
) -> None:
    publisher = RecordingPublisher()
    journal = make_journal(publisher=publisher)

    with pytest.raises(EventTooLarge):
        journal.append_batch([event(), huge_event()])

    assert publisher.calls == []


def test_recorded_at_comes_from_the_injected_clock(
    journal: Journal, clock: SteppingClock
) -> None:
    first = journal.append(event())
    later = clock.advance(3600)
    second = journal.append(event())

    stored = list(journal.read("lines"))

    assert (
        first.envelope.recorded_at
        == stored[0].recorded_at
        == clock.now - (timedelta(hours=1))
    )
    assert second.envelope.recorded_at == stored[1].recorded_at == later


def test_last_seq_at_finds_the_last_event_recorded_by_then(
    journal: Journal, clock: SteppingClock
) -> None:
    start = clock.now
    journal.append_batch([event(), event()])  # seq 1, 2 at start
    clock.advance(10)
    journal.append(event())  # seq 3 at start + 10s
    clock.advance(10)
    journal.append(event("words"))  # another collection at start + 20s

    assert journal.last_seq_at("lines", start - timedelta(seconds=1)) == 0
    assert journal.last_seq_at("lines", start) == 2
    assert journal.last_seq_at("lines", start + timedelta(seconds=9)) == 2
    assert journal.last_seq_at("lines", start + timedelta(seconds=10)) == 3
    assert journal.last_seq_at("lines", start + timedelta(days=1)) == 3
    assert journal.last_seq_at("words", start + timedelta(seconds=19)) == 0
    assert journal.last_seq_at("receipts", start) == 0


def test_last_seq_at_compares_instants_across_time_zones(
    journal: Journal, clock: SteppingClock
) -> None:
    journal.append(event())
    as_naive_utc = clock.now.replace(tzinfo=None)
    east = clock.now.astimezone(timezone(timedelta(hours=5)))

    assert journal.last_seq_at("lines", east) == 1
    assert journal.last_seq_at("lines", east - timedelta(microseconds=1)) == 0
    assert journal.last_seq_at("lines", as_naive_utc) == 1
