"""Parking, resuming and skipping a failing event (DESIGN section 8)."""

from __future__ import annotations

import dataclasses

from pipeline_rig import IMAGE, Rig, word_records
from structlog.testing import capture_logs

from journal.events import EventParked, EventSkipped, MetadataUpdate
from pipeline.parking import skip_event


def _missing_delta(rig: Rig) -> tuple[int, str, bytes]:
    """Journal: a good delta, a delta whose object is gone, a metadata update."""
    rig.delta("words", word_records(IMAGE, 1))
    bad = rig.delta("words", word_records(IMAGE, 2))
    rig.append("words", MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"a": 1}))
    key = bad.payload.key  # type: ignore[union-attr]
    data = rig.objects.get_bytes(key)
    rig.objects.delete(key)
    return bad.seq, key, data


def _kinds(rig: Rig) -> list[str]:
    return [e.payload.type for e in rig.journal.read("words")]


def test_a_failing_event_is_parked_in_the_journal_once(rig: Rig) -> None:
    seq, _, _ = _missing_delta(rig)

    with capture_logs() as logs:
        first = rig.consumer()
        first.catch_up()
    first.close()
    rig.consumer("restarted").catch_up()  # fails again after a restart

    parked = [e for e in rig.journal.read("words") if e.type == "event_parked"]
    assert len(parked) == 1
    payload = parked[0].payload
    assert isinstance(payload, EventParked)
    assert (payload.parked_seq, payload.attempts) == (seq, rig.config.apply_attempts)
    assert "ObjectNotFound" in payload.error
    assert any(log["event"] == "event_parked" for log in logs)
    assert rig.shared.live_manifest("words").applied_seq == seq - 1  # type: ignore[union-attr]


def test_a_skip_lets_the_consumer_move_on_and_equal_a_fresh_rebuild(
    rig: Rig,
) -> None:
    seq, _, _ = _missing_delta(rig)
    consumer = rig.consumer()
    consumer.catch_up()
    assert consumer.blocked()["words"].seq == seq

    rig.journal.append(skip_event("words", seq, "delta lost", producer="test"))
    consumer.catch_up()

    head = rig.journal.head("words")
    assert consumer.applied_seq("words") == head
    assert consumer.blocked() == {}
    assert _kinds(rig)[-2:] == ["event_parked", "event_skipped"]
    fresh = _fresh_rebuild_digest(rig)
    assert fresh == rig.live_digest("words")


def test_a_skip_is_honoured_even_when_the_event_would_now_succeed(
    rig: Rig,
) -> None:
    seq, key, data = _missing_delta(rig)
    rig.journal.append(skip_event("words", seq, "not wanted", producer="test"))
    rig.objects.put_bytes(key, data)  # the cause is gone, but the skip stands

    rig.consumer().catch_up()

    assert _fresh_rebuild_digest(rig) == rig.live_digest("words")
    assert rig.live_digest("words").count == len(word_records(IMAGE, 1).ids)


def test_resume_retries_the_parked_event_after_the_cause_is_fixed(rig: Rig) -> None:
    seq, key, data = _missing_delta(rig)
    consumer = rig.consumer()
    consumer.catch_up()
    assert consumer.catch_up() == []  # still stopped

    rig.objects.put_bytes(key, data)
    stopped = rig.status.get("words")
    assert stopped is not None and stopped.blocked_seq == seq
    rig.status.put(dataclasses.replace(stopped, blocked_seq=None, blocked_error=None))
    consumer.catch_up()

    assert consumer.applied_seq("words") == rig.journal.head("words")
    expected = len(word_records(IMAGE, 1).ids) + len(word_records(IMAGE, 2).ids)
    assert rig.live_digest("words").count == expected
    assert not any(
        isinstance(e.payload, EventSkipped) for e in rig.journal.read("words")
    )


def _fresh_rebuild_digest(rig: Rig) -> object:
    """A new consumer over the same journal into an empty shared store."""
    from pipeline.consumer import Consumer
    from pipeline.lease_local import LocalLease
    from pipeline.status_sqlite import SQLiteStatusStore
    from pipeline.store import SharedStore

    fresh_root = rig.tmp / "fresh"
    shared = SharedStore(fresh_root / "chroma")
    consumer = Consumer(
        rig.journal,
        rig.objects,
        shared,
        fresh_root / "staging",
        LocalLease(fresh_root / "leases"),
        SQLiteStatusStore(fresh_root / "status.sqlite3"),
        rig.config,
        owner="fresh",
        sleep=lambda _s: None,
    )
    try:
        consumer.catch_up()
        assert consumer.blocked() == {}
        from pipeline.digest import digest_of_path

        return digest_of_path(shared.live_path("words"), "words")
    finally:
        consumer.close()
