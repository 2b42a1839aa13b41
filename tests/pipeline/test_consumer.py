"""The consumer end to end: SQLite journal, local object store, local lease,
shared store and status mirror, all under tmp_path."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pipeline_rig import (
    IMAGE,
    OTHER_IMAGE,
    Rig,
    line_records,
    small_config,
    word_records,
)
from structlog.testing import capture_logs

from journal.events import (
    Envelope,
    LabelUpdate,
    LatestMoved,
    MetadataUpdate,
    RecordsDelete,
    SnapshotRequest,
)
from pipeline.chroma import ChromaCollection
from pipeline.errors import (
    JournalGapError,
    LeaseUnavailable,
    NoLiveVersion,
    PromotionRefused,
)
from pipeline.manifest import Manifest
from pipeline.reader import open_live


def fill(rig: Rig) -> None:
    """Every kind of event, over two collections."""
    rig.delta("lines", line_records(IMAGE, 1))
    rig.delta("words", word_records(IMAGE, 1))
    rig.delta("words", word_records(OTHER_IMAGE, 2, lines=1, words=2, seed=3))
    rig.append(
        "words",
        MetadataUpdate(
            image_id=IMAGE,
            receipt_id=1,
            changes={"merchant_name": "ACME", "phone": "5"},
        ),
    )
    rig.append(
        "lines", MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"city": "Oslo"})
    )
    rig.append(
        "words",
        LabelUpdate(
            image_id=IMAGE,
            receipt_id=1,
            line_id=1,
            word_id=2,
            valid_labels=["GRAND_TOTAL"],
            status="VALID",
        ),
    )
    rig.append("words", LabelUpdate(image_id=IMAGE, receipt_id=1, line_id=9, word_id=9))
    rig.append(
        "words", MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"phone": None})
    )
    rig.append("words", RecordsDelete(image_id=IMAGE, receipt_id=1, line_id=2))
    rig.append("lines", RecordsDelete(image_id=IMAGE, receipt_id=1, line_id=3))
    rig.append("words", SnapshotRequest())
    rig.delta("words", word_records(IMAGE, 1, lines=1, words=2, seed=8))


def assert_matches_model(rig: Rig, *collections: str) -> None:
    for collection in collections:
        expected = rig.expected(collection)
        manifest = rig.shared.live_manifest(collection)
        assert manifest is not None
        assert manifest.digest == expected.hexdigest
        assert manifest.record_count == expected.count
        assert rig.live_digest(collection) == expected
        assert manifest.applied_seq == rig.journal.head(collection)


def chain(rig: Rig, collection: str) -> list[Manifest]:
    """Live manifest, then its ancestors that still exist."""
    found = []
    manifest = rig.shared.live_manifest(collection)
    while manifest is not None:
        found.append(manifest)
        parent = manifest.parent
        if parent is None or parent not in rig.shared.versions(collection):
            break
        manifest = rig.shared.manifest(collection, parent)
    return found


def test_catch_up_applies_every_kind_like_a_direct_build(rig: Rig) -> None:
    fill(rig)

    outcomes = rig.consumer().catch_up()

    assert_matches_model(rig, "lines", "words")
    assert {o.collection for o in outcomes} == {"lines", "words"}
    words = rig.shared.live_manifest("words")
    assert words is not None
    assert (words.first_seq, words.last_seq) == (1, 9)
    assert words.writer == "consumer-a"
    assert words.fencing_token >= 1
    assert any(o.snapshot_requested for o in outcomes)


def test_group_commit_publishes_one_version_per_batch(rig: Rig) -> None:
    fill(rig)
    consumer = rig.consumer(config=small_config(group_commit_max_events=3))

    outcomes = consumer.catch_up(["words"])

    assert [(o.first_seq, o.last_seq) for o in outcomes] == [
        (1, 3),
        (4, 6),
        (7, 9),
    ]
    versions = chain(rig, "words")
    assert [m.applied_seq for m in versions] == [9, 6, 3]  # versions_keep=3
    assert_matches_model(rig, "words")


def test_a_batch_closes_at_the_delta_record_limit(rig: Rig) -> None:
    rig.delta("words", word_records(IMAGE, 1))  # 6 records
    rig.delta("words", word_records(IMAGE, 2))  # 6 records
    consumer = rig.consumer(config=small_config(group_commit_max_records=10))

    outcomes = consumer.catch_up()

    assert [(o.first_seq, o.last_seq) for o in outcomes] == [(1, 1), (2, 2)]


def test_a_second_catch_up_changes_nothing(rig: Rig) -> None:
    fill(rig)
    consumer = rig.consumer()
    consumer.catch_up()
    live = rig.shared.live_version("words")

    assert consumer.catch_up() == []
    assert rig.consumer(owner="other").catch_up() == []
    assert rig.shared.live_version("words") == live


def test_delivering_every_event_twice_gives_the_same_digest(rig: Rig) -> None:
    fill(rig)
    envelopes = list(rig.journal.read("words"))
    consumer = rig.consumer(config=small_config(group_commit_max_events=4))

    consumer.apply_envelopes("words", envelopes[:5] + envelopes[:5])
    consumer.apply_envelopes("words", envelopes + envelopes[3:])
    live = rig.shared.live_version("words")

    assert consumer.apply_envelopes("words", envelopes) == []
    assert rig.shared.live_version("words") == live
    assert_matches_model(rig, "words")


def test_apply_envelopes_fills_gaps_from_the_journal(rig: Rig) -> None:
    fill(rig)
    envelopes = list(rig.journal.read("words"))

    outcomes = rig.consumer().apply_envelopes("words", [envelopes[0], envelopes[6]])

    assert [(o.first_seq, o.last_seq) for o in outcomes] == [(1, 7)]
    assert rig.consumer(owner="b").applied_seq("words") == 7


def test_apply_envelopes_never_passes_a_seq_missing_from_the_journal(rig: Rig) -> None:
    fill(rig)
    head = rig.journal.head("words")
    last = list(rig.journal.read("words"))[-1]
    beyond = last.model_copy(update={"seq": head + 2})
    consumer = rig.consumer()

    with pytest.raises(JournalGapError) as raised:
        consumer.apply_envelopes("words", [beyond])

    assert raised.value.missing_seq == head + 1
    assert consumer.applied_seq("words") == head


def test_a_restart_part_way_reaches_the_same_digest(rig: Rig) -> None:
    fill(rig)
    config = small_config(group_commit_max_events=2)
    first = rig.consumer(config=config)
    first.step("words")
    first.step("words")
    first.close()

    second = rig.consumer(config=config)
    with capture_logs() as logs:
        second.catch_up()

    assert_matches_model(rig, "lines", "words")
    setups = [log for log in logs if log["event"] == "staging_setup"]
    words_setups = [log["rebuilt"] for log in setups if log["collection"] == "words"]
    assert words_setups == [False, False, False]  # the warm copy was verified, kept


def test_a_lost_working_copy_is_rebuilt_from_the_live_version(rig: Rig) -> None:
    fill(rig)
    config = small_config(group_commit_max_events=4)
    first = rig.consumer(config=config)
    first.step("words")
    first.close()
    shutil.rmtree(rig.staging / "words")

    rig.consumer(config=config).catch_up()

    assert_matches_model(rig, "words")


def test_a_tampered_working_copy_is_rebuilt(rig: Rig) -> None:
    fill(rig)
    config = small_config(group_commit_max_events=4)
    first = rig.consumer(config=config)
    first.step("words")
    first.close()
    with (rig.staging / "words" / "chroma" / "chroma.sqlite3").open("ab") as out:
        out.write(b"torn")

    with capture_logs() as logs:
        rig.consumer(config=config).catch_up(["words"])

    assert next(log for log in logs if log["event"] == "staging_setup")["rebuilt"]
    assert_matches_model(rig, "words")


def test_a_metadata_batch_links_every_index_file_from_its_parent(rig: Rig) -> None:
    # Past ChromaDB's sync threshold (1000 operations) the index files are a
    # checkpoint that a few metadata changes leave alone; below it, loading
    # the collection rewrites them.
    rig.delta("words", word_records(IMAGE, 1, lines=40, words=30))
    rig.delta("words", word_records(IMAGE, 2))
    consumer = rig.consumer()
    consumer.catch_up()
    parent = rig.shared.live_manifest("words")
    rig.append(
        "words",
        MetadataUpdate(image_id=IMAGE, receipt_id=2, changes={"city": "Bergen"}),
    )

    (outcome,) = consumer.catch_up()

    child = rig.shared.live_manifest("words")
    assert parent is not None and child is not None
    old = rig.shared.version_path("words", parent.version)
    new = rig.shared.version_path("words", child.version)
    changed = {
        n for n in child.files if (new / n).stat().st_ino != (old / n).stat().st_ino
    }
    assert changed == {"chroma.sqlite3"}
    assert outcome.bytes_published == child.files["chroma.sqlite3"].size


def test_a_bookkeeping_batch_shares_every_file_with_its_parent(rig: Rig) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    consumer = rig.consumer()
    consumer.catch_up()
    parent = rig.shared.live_manifest("words")
    assert parent is not None
    rig.append("words", LatestMoved(version=parent.version, applied_seq=1))

    (outcome,) = consumer.catch_up()

    child = rig.shared.live_manifest("words")
    assert child is not None and child.applied_seq == 2
    assert child.files == parent.files and child.digest == parent.digest
    assert outcome.bytes_published == 0


def test_a_reader_keeps_its_version_while_a_new_reader_sees_the_next(
    rig: Rig, tmp_path: Path
) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    consumer = rig.consumer()
    consumer.catch_up()
    cache = tmp_path / "readers"

    with open_live(rig.shared.root, "words", cache) as old_reader:
        rig.append("words", RecordsDelete(image_id=IMAGE, receipt_id=1))
        consumer.catch_up()
        with open_live(rig.shared.root, "words", cache) as new_reader:
            assert new_reader.count() == 0
        assert old_reader.count() == 6

    assert len(list((cache / "words").iterdir())) == 2


def test_a_failing_delta_blocks_its_collection_after_promoting_the_events_before(
    rig: Rig,
) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    rig.append("words", MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"a": 1}))
    bad = rig.delta("words", word_records(IMAGE, 2))
    rig.append("words", MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"b": 2}))
    rig.delta("lines", line_records(IMAGE, 1))
    rig.objects.delete(bad.payload.key)  # type: ignore[union-attr]
    consumer = rig.consumer()

    with capture_logs() as logs:
        outcomes = consumer.catch_up()

    assert [(o.collection, o.last_seq) for o in outcomes] == [
        ("lines", 1),
        ("words", 2),
    ]
    assert consumer.applied_seq("words") == 2
    assert consumer.blocked()["words"].seq == 3
    failed = next(log for log in logs if log["event"] == "event_parked")
    assert (failed["collection"], failed["seq"], failed["log_level"]) == (
        "words",
        3,
        "error",
    )
    assert "ObjectNotFound" in failed["cause"]
    status = rig.status.get("words")
    assert status is not None
    assert (status.applied_seq, status.blocked_seq) == (2, 3)
    assert "ObjectNotFound" in (status.blocked_error or "")
    assert consumer.catch_up() == []  # stays blocked


def test_a_blocked_collection_resumes_after_unblock(rig: Rig) -> None:
    records = word_records(IMAGE, 2)
    rig.delta("words", word_records(IMAGE, 1))
    bad = rig.delta("words", records)
    data = rig.objects.get_bytes(bad.payload.key)  # type: ignore[union-attr]
    rig.objects.delete(bad.payload.key)  # type: ignore[union-attr]
    consumer = rig.consumer()
    consumer.catch_up()

    rig.objects.put_bytes(bad.payload.key, data)  # type: ignore[union-attr]
    consumer.unblock("words")
    consumer.catch_up()

    assert consumer.blocked() == {}
    assert_matches_model(rig, "words")
    status = rig.status.get("words")
    assert status is not None and status.blocked_seq is None


def test_a_corrupt_first_delta_leaves_the_live_version_unchanged(rig: Rig) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    consumer = rig.consumer()
    consumer.catch_up()
    live = rig.shared.live_version("words")
    bad = rig.delta("words", word_records(IMAGE, 2))
    rig.objects.put_bytes(bad.payload.key, b"not the delta")  # type: ignore[union-attr]

    assert consumer.catch_up() == []

    assert rig.shared.live_version("words") == live
    assert consumer.blocked()["words"].seq == 2
    assert "DeltaIntegrityError" in consumer.blocked()["words"].error


def test_a_second_owner_is_kept_out_while_the_lease_is_held(rig: Rig) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    holder = rig.consumer(owner="a")
    holder.catch_up()
    rig.delta("words", word_records(IMAGE, 2))

    with pytest.raises(LeaseUnavailable) as raised:
        rig.consumer(owner="b", staging_root=rig.tmp / "staging-b").step("words")

    assert raised.value.holder == "a"
    assert holder.applied_seq("words") == 1


def test_a_writer_whose_lease_was_taken_over_promotes_nothing(rig: Rig) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    zombie = rig.consumer(owner="a")
    zombie.catch_up()
    rig.clock.advance(rig.config.lease_ttl_seconds + 1)
    successor = rig.consumer(owner="b", staging_root=rig.tmp / "staging-b")
    rig.delta("words", word_records(IMAGE, 2))
    successor.catch_up()
    rig.delta("words", word_records(IMAGE, 3))
    live = rig.shared.live_version("words")

    with pytest.raises(LeaseUnavailable):
        zombie.step("words")

    assert rig.shared.live_version("words") == live
    assert rig.shared.live_manifest("words").writer == "b"  # type: ignore[union-attr]


def test_a_refused_promotion_removes_its_version_and_the_next_step_recovers(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    consumer = rig.consumer()
    consumer.catch_up()
    rig.delta("words", word_records(IMAGE, 2))
    real_promote = rig.shared.promote

    def refuse(collection: str, manifest: Manifest, **kwargs: object) -> None:
        raise PromotionRefused(collection, "another writer was first")

    monkeypatch.setattr(rig.shared, "promote", refuse)
    versions = rig.shared.versions("words")
    with pytest.raises(PromotionRefused):
        consumer.step("words")
    assert rig.shared.versions("words") == versions

    monkeypatch.setattr(rig.shared, "promote", real_promote)
    consumer.catch_up()
    assert_matches_model(rig, "words")


def test_after_promote_sees_each_batch_and_its_failure_does_not_stop_the_consumer(
    rig: Rig,
) -> None:
    seen: list[tuple[int, list[int]]] = []

    def hook(manifest: Manifest, events: Sequence[Envelope]) -> None:
        seen.append((manifest.applied_seq, [e.seq for e in events]))
        raise RuntimeError("snapshot upload failed")

    fill(rig)
    consumer = rig.consumer(
        config=small_config(group_commit_max_events=6), after_promote=hook
    )

    with capture_logs() as logs:
        consumer.catch_up(["words"])

    assert seen == [(6, [1, 2, 3, 4, 5, 6]), (9, [7, 8, 9])]
    assert sum(log["event"] == "after_promote_failed" for log in logs) == 2
    assert_matches_model(rig, "words")


def test_promotion_mirrors_the_status_and_logs_one_line(rig: Rig) -> None:
    fill(rig)

    with capture_logs() as logs:
        rig.consumer().catch_up(["words"])

    status = rig.status.get("words")
    live = rig.shared.live_manifest("words")
    assert status is not None and live is not None
    assert (status.applied_seq, status.live_version) == (9, live.version)
    assert status.last_batch_events == 9
    (line,) = [log for log in logs if log["event"] == "promotion_complete"]
    assert line["log_level"] == "info"
    assert (line["first_seq"], line["last_seq"], line["version"]) == (
        1,
        9,
        live.version,
    )
    assert set(line["durations"]) >= {"setup", "apply", "digest", "publish", "promote"}


def test_group_commit_waits_for_a_young_batch_to_fill(rig: Rig) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    waits: list[float] = []
    consumer = rig.consumer(
        config=small_config(group_commit_max_seconds=0.5), sleep=waits.append
    )
    rig.clock.advance(0.2)

    consumer.catch_up()

    assert waits == [pytest.approx(0.3)]


def test_run_until_caught_up_returns_and_releases_its_leases(rig: Rig) -> None:
    fill(rig)
    consumer = rig.consumer()

    consumer.run(threading.Event(), until_caught_up=True)

    assert_matches_model(rig, "lines", "words")
    assert rig.lease.current("words") is None


def test_run_stops_between_batches_when_asked(rig: Rig) -> None:
    fill(rig)
    stop = threading.Event()

    def stop_after_first(manifest: Manifest, events: Sequence[Envelope]) -> None:
        stop.set()

    consumer = rig.consumer(
        config=small_config(group_commit_max_events=2), after_promote=stop_after_first
    )
    consumer.run(stop)

    promoted = [rig.consumer(owner="x").applied_seq(c) for c in ("lines", "words")]
    assert promoted == [2, 0]


def test_run_tails_new_events(rig: Rig) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    stop = threading.Event()
    consumer = rig.consumer(config=small_config(poll_interval_seconds=0.02))
    worker = threading.Thread(target=consumer.run, args=(stop,))
    worker.start()
    try:
        rig.append("words", RecordsDelete(image_id=IMAGE, receipt_id=1))
        for _ in range(500):
            if consumer.applied_seq("words") == 2:
                break
            stop.wait(0.02)
    finally:
        stop.set()
        worker.join(timeout=30)

    assert not worker.is_alive()
    assert_matches_model(rig, "words")


def test_lease_expiry_between_batches_is_renewed_transparently(rig: Rig) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    consumer = rig.consumer()
    consumer.catch_up()
    first_token = rig.shared.live_manifest("words").fencing_token  # type: ignore[union-attr]
    rig.clock.advance(rig.config.lease_ttl_seconds * 2)
    rig.delta("words", word_records(IMAGE, 2))

    consumer.catch_up()

    second = rig.shared.live_manifest("words")
    assert second is not None and second.fencing_token > first_token
    assert rig.lease.current("words") is not None
    assert rig.lease.current("words").expires_at > rig.clock() + timedelta(seconds=1)  # type: ignore[union-attr]


def lose_from_journal(rig: Rig, collection: str, *seqs: int) -> None:
    """Delete events behind the journal's back (data loss, a bad restore)."""
    with sqlite3.connect(rig.tmp / "journal.sqlite3") as db:
        db.executemany(
            "DELETE FROM events WHERE collection = ? AND seq = ?",
            [(collection, seq) for seq in seqs],
        )


@pytest.mark.parametrize("lost", [(2,), (1, 2)])
def test_a_seq_missing_from_the_journal_is_never_stepped_over(
    rig: Rig, lost: tuple[int, ...]
) -> None:
    for receipt in (1, 2, 3):
        rig.delta("words", word_records(IMAGE, receipt))
    lose_from_journal(rig, "words", *lost)
    consumer = rig.consumer(config=small_config(group_commit_max_events=2))

    with pytest.raises(JournalGapError) as raised:
        consumer.catch_up()

    assert raised.value.missing_seq == lost[0]
    assert consumer.applied_seq("words") < lost[0]


def test_a_failing_label_run_is_applied_again_event_by_event(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    for word in (1, 2, 3):
        rig.append(
            "words",
            LabelUpdate(
                image_id=IMAGE,
                receipt_id=1,
                line_id=1,
                word_id=word,
                valid_labels=["TAX"],
            ),
        )

    def broken(*args: object) -> None:
        raise RuntimeError("ChromaDB hiccup")

    monkeypatch.setattr("pipeline.applier.apply_label_run", broken)
    with capture_logs() as logs:
        (outcome,) = rig.consumer().catch_up()

    assert outcome.records_updated == 3
    assert any(log["event"] == "update_run_failed" for log in logs)
    assert_matches_model(rig, "words")


def test_open_live_refuses_a_collection_without_a_version(
    rig: Rig, tmp_path: Path
) -> None:
    with pytest.raises(NoLiveVersion), open_live(rig.shared.root, "words", tmp_path):
        pass


def test_metadata_runs_hash_what_they_stored_without_reading_it_back(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    rig.delta("words", word_records(IMAGE, 2))
    rig.delta("words", word_records(OTHER_IMAGE, 3))
    consumer = rig.consumer()
    consumer.catch_up()
    read_back: list[str] = []
    real = ChromaCollection.metadatas

    def spying(self: ChromaCollection, ids: Sequence[str]) -> Any:
        read_back.extend(ids)
        return real(self, ids)

    monkeypatch.setattr(ChromaCollection, "metadatas", spying)
    word = word_records(IMAGE, 1).ids[0]
    rig.append(
        "words",
        MetadataUpdate(
            image_id=IMAGE,
            receipt_id=1,
            changes={"merchant_name": "ACME", "items": 3, "paid": True},
        ),
    )
    rig.append("words", MetadataUpdate(image_id=IMAGE, receipt_id=2, changes={"a": 1}))
    rig.append(
        "words", MetadataUpdate(image_id=IMAGE, receipt_id=2, changes={"a": None})
    )
    rig.append(
        "words",
        MetadataUpdate(image_id=OTHER_IMAGE, receipt_id=3, changes={"tip": 0.1}),
    )
    rig.append(
        "words",
        LabelUpdate(
            image_id=IMAGE,
            receipt_id=1,
            line_id=1,
            word_id=1,
            valid_labels=["MERCHANT_NAME"],
            status="VALID",
        ),
    )

    consumer.catch_up()

    assert_matches_model(rig, "words")
    # Read back: only the float's receipt. The word labelled after the run
    # is not: the receipt index, built by the run, knew what it stored.
    assert sorted(read_back) == sorted(word_records(OTHER_IMAGE, 3).ids)
    assert word not in read_back


def test_a_batch_chosen_before_another_writer_promoted_is_refused(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    rig.append("words", RecordsDelete(image_id=IMAGE, receipt_id=1))
    first = rig.consumer("writer-a")
    first.catch_up()
    first.close()
    live = rig.shared.live_manifest("words")
    assert live is not None and live.applied_seq == 2
    late = rig.consumer("writer-b", config=small_config(group_commit_max_events=1))
    # writer-b read where to start just before writer-a promoted seq 1 and 2.
    monkeypatch.setattr(late, "applied_seq", lambda _collection: 0)

    with pytest.raises(PromotionRefused, match="batch starts at seq 1"):
        late.step("words")

    assert rig.shared.live_manifest("words") == live  # the delta is not back
    assert_matches_model(rig, "words")


def test_a_batch_chosen_before_a_rebuild_behind_live_was_promoted_is_refused(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    for receipt in (1, 2, 3):
        rig.delta("words", word_records(IMAGE, receipt))
    consumer = rig.consumer(config=small_config(group_commit_max_events=1))
    consumer.catch_up()
    behind = chain(rig, "words")[2]  # applied_seq 1, as a replay would promote
    assert behind.applied_seq == 1
    rig.shared.promote(
        "words",
        behind,
        expected_parent=chain(rig, "words")[0].version,
        fencing_token=behind.fencing_token,
    )
    rig.delta("words", word_records(IMAGE, 4))
    # The consumer read where to start (seq 3) before the replay promoted.
    monkeypatch.setattr(consumer, "applied_seq", lambda _collection: 3)

    with pytest.raises(PromotionRefused, match="batch starts at seq 4"):
        consumer.step("words")

    assert rig.shared.live_manifest("words") == behind


def test_metadata_runs_that_change_a_key_s_type_hash_what_chromadb_stores(
    rig: Rig,
) -> None:
    rig.delta("words", word_records(IMAGE, 1, extra={"merchant_name": "ACME"}))
    consumer = rig.consumer()
    consumer.catch_up()
    for changes in (
        {"merchant_name": 7},  # str -> int
        {"merchant_name": True},  # int -> bool
        {"merchant_name": "Café\u0000", "gone": None},  # -> str, NUL, absent key
        {"count": 2**63 - 1, "low": -(2**63)},
    ):
        rig.append(
            "words", MetadataUpdate(image_id=IMAGE, receipt_id=1, changes=changes)
        )
        consumer.catch_up()  # one batch per change: each is hashed, not read
        assert_matches_model(rig, "words")


def test_metadata_updates_find_records_the_same_batch_added_moved_or_deleted(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the receipt index is built, metadata updates are answered from
    memory; a batch that adds a receipt's records, moves a record to another
    receipt and deletes some before updating them must update exactly what
    ChromaDB holds then (checked against the model, built without
    ChromaDB), and never ask ChromaDB for a receipt's records."""
    rig.delta("words", word_records(IMAGE, 1))
    rig.delta("words", word_records(IMAGE, 2))
    consumer = rig.consumer()
    consumer.catch_up()
    rig.append("words", MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"a": 1}))
    consumer.catch_up()  # builds the index
    asked: list[Any] = []
    real = ChromaCollection.records_by_receipt
    monkeypatch.setattr(
        ChromaCollection,
        "records_by_receipt",
        lambda self, images: asked.append(images) or real(self, images),
    )
    scans: list[int] = []
    real_scan = ChromaCollection.all_metadatas
    monkeypatch.setattr(
        ChromaCollection,
        "all_metadatas",
        lambda self: scans.append(1) or real_scan(self),
    )

    moved = word_records(IMAGE, 1, lines=1, words=1, seed=5)
    moved.metadatas[0] = {"receipt_id": 2, "moved": True}  # image_id kept
    rig.delta("words", word_records(IMAGE, 3, seed=1))
    rig.delta("words", moved)
    rig.append("words", RecordsDelete(image_id=IMAGE, receipt_id=2, line_id=1))
    for receipt in (1, 2, 3):
        rig.append(
            "words",
            MetadataUpdate(image_id=IMAGE, receipt_id=receipt, changes={"b": receipt}),
        )
    rig.append(
        "words",
        LabelUpdate(
            image_id=IMAGE, receipt_id=2, line_id=2, word_id=1, valid_labels=["TAX"]
        ),
    )
    rig.append("words", MetadataUpdate(image_id=IMAGE, receipt_id=2, changes={"c": 0}))
    consumer.catch_up()
    assert_matches_model(rig, "words")

    # And in the next batch, from what the last one left.
    rig.delta("words", word_records(IMAGE, 4, seed=2))
    rig.append("words", RecordsDelete(image_id=IMAGE, receipt_id=3))
    for receipt in (1, 2, 3, 4):
        rig.append(
            "words",
            MetadataUpdate(image_id=IMAGE, receipt_id=receipt, changes={"d": "x"}),
        )
    consumer.catch_up()
    assert_matches_model(rig, "words")
    assert (asked, scans) == ([], [])


def test_a_delete_that_fails_part_way_and_is_retried_publishes_the_right_digest(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry finds only the records still stored; the ones the failed
    attempt removed must still leave the digest."""
    rig.delta("words", word_records(IMAGE, 1))
    consumer = rig.consumer()
    consumer.catch_up()
    real = ChromaCollection.delete
    calls: list[list[str]] = []

    def flaky(self: ChromaCollection, ids: Sequence[str]) -> None:
        calls.append(list(ids))
        if len(calls) == 1:
            real(self, ids[: len(ids) // 2])
            raise RuntimeError("failed after deleting half")
        real(self, ids)

    monkeypatch.setattr(ChromaCollection, "delete", flaky)
    rig.append("words", RecordsDelete(image_id=IMAGE, receipt_id=1))
    consumer.catch_up()
    assert [len(c) for c in calls] == [6, 3]
    assert_matches_model(rig, "words")
