"""Applying each kind of event to an open collection."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pipeline_rig import (
    IMAGE,
    OTHER_IMAGE,
    envelope,
    line_records,
    page_of,
    word_records,
)
from structlog.testing import capture_logs

from journal.deltas import write_delta
from journal.errors import DeltaIntegrityError, ObjectNotFound
from journal.events import (
    Envelope,
    EventSkipped,
    LabelUpdate,
    MetadataUpdate,
    Payload,
    RecordsDelete,
    SnapshotRequest,
)
from journal.ids import line_id_of, word_id_of
from journal.local_store import LocalObjectStore
from pipeline.applier import EventApplier
from pipeline.apply import (
    ApplyContext,
    ApplyResult,
    KnownIds,
    apply_event,
    apply_label_run,
    apply_metadata_run,
    record_filter,
)
from pipeline.chroma import ChromaCollection, open_collection
from pipeline.digest import RecordHashes

WORD_1_2 = word_id_of(IMAGE, 1, 1, 2)


@pytest.fixture
def objects(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


@pytest.fixture
def context(tmp_path: Path, objects: LocalObjectStore) -> ApplyContext:
    return ApplyContext(objects, tmp_path / "scratch")


@pytest.fixture
def words(tmp_path: Path) -> Iterator[ChromaCollection]:
    with open_collection(tmp_path / "words", "words", space="l2") as collection:
        collection.upsert(page_of(word_records(IMAGE, 1)))
        collection.upsert(page_of(word_records(IMAGE, 2, lines=1, words=2)))
        collection.upsert(page_of(word_records(OTHER_IMAGE, 1, lines=1, words=1)))
        yield collection


def metadata(collection: ChromaCollection, record_id: str) -> dict[str, Any]:
    page = next(collection.records([record_id]))
    return page.metadatas[0] or {}


def all_ids(collection: ChromaCollection) -> set[str]:
    return {i for page in collection.pages() for i in page.ids}


def apply(
    collection: ChromaCollection, payload: Payload, context: ApplyContext
) -> ApplyResult:
    return apply_event(collection, envelope(payload), context)


def test_metadata_update_changes_every_record_of_the_receipt_only(
    words: ChromaCollection, context: ApplyContext
) -> None:
    update = MetadataUpdate(
        image_id=IMAGE, receipt_id=1, changes={"merchant_name": "ACME", "phone": "1"}
    )

    result = apply(words, update, context)

    assert result.updated == 6
    receipt = words.ids_where(record_filter(IMAGE, 1))
    assert len(receipt) == 6
    assert all(metadata(words, i)["merchant_name"] == "ACME" for i in receipt)
    untouched = word_id_of(IMAGE, 2, 1, 1)
    assert "merchant_name" not in metadata(words, untouched)
    assert "merchant_name" not in metadata(words, word_id_of(OTHER_IMAGE, 1, 1, 1))


def test_metadata_update_with_null_removes_the_key(
    words: ChromaCollection, context: ApplyContext
) -> None:
    apply(
        words,
        MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"phone": "1"}),
        context,
    )

    apply(
        words,
        MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"phone": None}),
        context,
    )

    stored = metadata(words, WORD_1_2)
    assert "phone" not in stored
    assert stored["text"] == "w12"


def test_label_update_stores_the_whole_label_state(
    words: ChromaCollection, context: ApplyContext
) -> None:
    labels = LabelUpdate(
        image_id=IMAGE,
        receipt_id=1,
        line_id=1,
        word_id=2,
        valid_labels=["TAX", "GRAND_TOTAL"],
        invalid_labels=["DATE"],
        status="VALID",
        proposed_by="agent-7",
        validated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )

    result = apply(words, labels, context)

    assert (result.updated, result.metadata_touched) == (1, {WORD_1_2})
    assert not result.touched
    stored = metadata(words, WORD_1_2)
    assert stored["valid_labels"] == ",GRAND_TOTAL,TAX,"
    assert stored["invalid_labels"] == ",DATE,"
    assert stored["label_status"] == "VALID"
    assert stored["label_proposed_by"] == "agent-7"
    assert stored["label_validated_at"] == "2026-01-02T03:04:05+00:00"


def test_label_update_with_empty_lists_removes_the_label_keys(
    words: ChromaCollection, context: ApplyContext
) -> None:
    full = LabelUpdate(
        image_id=IMAGE, receipt_id=1, line_id=1, word_id=2,
        valid_labels=["TAX"], invalid_labels=["DATE"], proposed_by="x",
    )  # fmt: skip
    apply(words, full, context)

    cleared = LabelUpdate(image_id=IMAGE, receipt_id=1, line_id=1, word_id=2)
    apply(words, cleared, context)
    apply(words, cleared, context)  # twice: idempotent

    stored = metadata(words, WORD_1_2)
    assert "valid_labels" not in stored
    assert "invalid_labels" not in stored
    assert "label_proposed_by" not in stored
    assert stored["label_status"] == "NONE"


def test_label_update_of_a_missing_word_is_skipped_with_a_warning(
    words: ChromaCollection, context: ApplyContext
) -> None:
    before = {i: metadata(words, i) for i in all_ids(words)}
    missing = LabelUpdate(image_id=IMAGE, receipt_id=1, line_id=9, word_id=9)

    with capture_logs() as logs:
        result = apply_event(words, envelope(missing, seq=42), context)

    assert result == ApplyResult()
    warning = next(log for log in logs if log["event"] == "label_target_missing")
    assert warning["log_level"] == "warning"
    assert (warning["collection"], warning["seq"]) == ("words", 42)
    assert warning["id"] == word_id_of(IMAGE, 1, 9, 9)
    assert {i: metadata(words, i) for i in all_ids(words)} == before


RECEIPT_1 = {word_id_of(IMAGE, 1, line, w) for line in (1, 2) for w in (1, 2, 3)}
LINE_2 = {word_id_of(IMAGE, 1, 2, w) for w in (1, 2, 3)}


@pytest.mark.parametrize(
    ("target", "gone"),
    [
        ({"receipt_id": 1}, RECEIPT_1),
        ({"receipt_id": 1, "line_id": 2}, LINE_2),
        ({"receipt_id": 1, "line_id": 2, "word_id": 3}, {word_id_of(IMAGE, 1, 2, 3)}),
    ],
    ids=["receipt", "line", "word"],
)
def test_records_delete_removes_exactly_the_target(
    words: ChromaCollection,
    context: ApplyContext,
    target: dict[str, int],
    gone: set[str],
) -> None:
    before = all_ids(words)

    result = apply(words, RecordsDelete(image_id=IMAGE, **target), context)

    assert result.deleted == len(gone)
    assert all_ids(words) == before - gone


def test_line_delete_in_the_lines_collection_removes_the_line_record(
    tmp_path: Path, context: ApplyContext
) -> None:
    with open_collection(tmp_path / "lines", "lines", space="l2") as lines:
        lines.upsert(page_of(line_records(IMAGE, 1)))

        apply(lines, RecordsDelete(image_id=IMAGE, receipt_id=1, line_id=2), context)
        word_delete = RecordsDelete(image_id=IMAGE, receipt_id=1, line_id=1, word_id=1)
        result = apply(lines, word_delete, context)

        assert all_ids(lines) == {line_id_of(IMAGE, 1, 1), line_id_of(IMAGE, 1, 3)}
        assert result.deleted == 0


def test_delta_merge_replaces_vectors_and_keeps_metadata_it_does_not_name(
    words: ChromaCollection, context: ApplyContext, objects: LocalObjectStore
) -> None:
    labels = LabelUpdate(
        image_id=IMAGE, receipt_id=1, line_id=1, word_id=2, valid_labels=["TAX"]
    )
    apply(words, labels, context)
    again = word_records(IMAGE, 1, seed=5)  # re-embedded receipt
    payload = write_delta(objects, "words", again)

    result = apply(words, payload, context)

    assert result.upserted == 6
    page = next(words.records([WORD_1_2]))
    index = again.ids.index(WORD_1_2)
    np.testing.assert_array_equal(page.embeddings[0], again.embeddings[index])
    assert page.documents[0] == again.documents[index]
    assert (page.metadatas[0] or {})["valid_labels"] == ",TAX,"
    assert not list(context.scratch_dir.iterdir())  # the unpacked delta is gone


def test_delta_merge_with_a_wrong_sha256_is_refused_before_any_write(
    words: ChromaCollection, context: ApplyContext, objects: LocalObjectStore
) -> None:
    payload = write_delta(objects, "words", word_records(IMAGE, 7))
    forged = payload.model_copy(update={"sha256": "f" * 64})
    before = all_ids(words)

    with pytest.raises(DeltaIntegrityError):
        apply(words, forged, context)

    assert all_ids(words) == before


def test_delta_merge_of_a_missing_object_fails(
    words: ChromaCollection, context: ApplyContext, objects: LocalObjectStore
) -> None:
    payload = write_delta(objects, "words", word_records(IMAGE, 7))
    objects.delete(payload.key)

    with pytest.raises(ObjectNotFound):
        apply(words, payload, context)


def test_snapshot_request_is_reported_and_bookkeeping_changes_nothing(
    words: ChromaCollection, context: ApplyContext
) -> None:
    before = {i: metadata(words, i) for i in all_ids(words)}

    requested = apply(words, SnapshotRequest(reason="nightly"), context)
    skipped = apply(words, EventSkipped(skipped_seq=3, reason="bad delta"), context)

    assert requested == ApplyResult(snapshot_requested=True)
    assert skipped == ApplyResult()
    assert {i: metadata(words, i) for i in all_ids(words)} == before


def label(seq: int, word: int, labels: list[str], line: int = 1) -> Envelope:
    payload = LabelUpdate(
        image_id=IMAGE, receipt_id=1, line_id=line, word_id=word, valid_labels=labels
    )
    return envelope(payload, seq=seq)


def test_a_run_of_label_updates_ends_like_applying_them_one_by_one(
    tmp_path: Path, context: ApplyContext
) -> None:
    run = [
        label(1, 1, ["TAX"]),
        label(2, 2, ["DATE"]),
        label(3, 9, ["TIME"], line=9),  # no such word
        label(4, 1, ["GRAND_TOTAL"]),
    ]
    states = []
    for name, together in (("a", True), ("b", False)):
        with open_collection(tmp_path / name, "words", space="l2") as collection:
            collection.upsert(page_of(word_records(IMAGE, 1)))
            with capture_logs() as logs:
                if together:
                    result = apply_label_run(collection, run)
                else:
                    result = ApplyResult()
                    for one in run:
                        result.merge(apply_event(collection, one, context))
            states.append({i: metadata(collection, i) for i in all_ids(collection)})
        missing = [log["seq"] for log in logs if log["event"] == "label_target_missing"]
        assert missing == [3]
        assert result.updated == 3
    assert states[0] == states[1]
    assert states[0][word_id_of(IMAGE, 1, 1, 1)]["valid_labels"] == ",GRAND_TOTAL,"


def merchant(seq: int, changes: dict[str, Any], receipt: int = 1) -> Envelope:
    payload = MetadataUpdate(image_id=IMAGE, receipt_id=receipt, changes=changes)
    return envelope(payload, seq=seq)


def test_a_run_of_metadata_updates_ends_like_applying_them_one_by_one(
    tmp_path: Path, context: ApplyContext
) -> None:
    run = [
        merchant(1, {"merchant_name": "ACME", "phone": "555"}),
        merchant(2, {"place_id": "p1"}, receipt=2),
        merchant(3, {"phone": None, "merchant_name": "ACME LTD"}),
        merchant(4, {"address": "Main St"}, receipt=7),  # no such receipt
        merchant(5, {"place_id": None, "category": "food"}, receipt=2),
    ]
    states = []
    for name, together in (("a", True), ("b", False)):
        with open_collection(tmp_path / name, "words", space="l2") as collection:
            collection.upsert(page_of(word_records(IMAGE, 1)))
            collection.upsert(page_of(word_records(IMAGE, 2, seed=1)))
            if together:
                result = apply_metadata_run(collection, run)
            else:
                result = ApplyResult()
                for one in run:
                    result.merge(apply_event(collection, one, context))
            states.append({i: metadata(collection, i) for i in all_ids(collection)})
        assert result.updated == 4 * len(word_records(IMAGE, 1).ids)
    assert states[0] == states[1]
    first = states[0][word_id_of(IMAGE, 1, 1, 1)]
    assert (first["merchant_name"], "phone" in first) == ("ACME LTD", False)
    second = states[0][word_id_of(IMAGE, 2, 1, 1)]
    assert ("place_id" in second, second["category"]) == (False, "food")


def new_word_label(seq: int, labels: list[str]) -> Envelope:
    payload = LabelUpdate(
        image_id=IMAGE, receipt_id=3, line_id=1, word_id=1, valid_labels=labels
    )
    return envelope(payload, seq=seq)


def test_known_ids_follow_a_batch_and_decide_labels_like_chromadb(
    tmp_path: Path, objects: LocalObjectStore
) -> None:
    """A batch that adds a receipt, deletes a word and labels both (and a word
    that never existed): checking existence in memory, followed through the
    batch, labels exactly what asking ChromaDB labels."""
    deleted = word_id_of(IMAGE, 1, 1, 3)
    delete = RecordsDelete(image_id=IMAGE, receipt_id=1, line_id=1, word_id=3)
    batch = [
        new_word_label(1, ["TAX"]),  # receipt 3 is not stored yet
        envelope(write_delta(objects, "words", word_records(IMAGE, 3, lines=1)), 2),
        envelope(delete, seq=3),
        new_word_label(4, ["DATE"]),
        label(5, 3, ["TIME"]),  # the word deleted at seq 3
        label(6, 2, ["TOTAL"]),  # stored all along
        label(7, 9, ["TIME"], line=9),  # never stored
    ]
    outcomes = []
    for name, in_memory in (("chroma", False), ("memory", True)):
        with open_collection(tmp_path / name, "words", space="l2") as collection:
            collection.upsert(page_of(word_records(IMAGE, 1)))
            known = KnownIds(RecordHashes.scan(collection)) if in_memory else None
            context = ApplyContext(objects, tmp_path / f"scratch-{name}", known=known)
            with capture_logs() as logs:
                list(EventApplier().apply(collection, batch, context))
            state = {i: metadata(collection, i) for i in all_ids(collection)}
        missing = [log["seq"] for log in logs if log["event"] == "label_target_missing"]
        outcomes.append((state, missing))
        if known is not None:  # still exactly the stored ids
            assert {i for i in [*state, deleted] if i in known} == set(state)
    assert outcomes[0] == outcomes[1]
    state, missing = outcomes[1]
    assert missing == [1, 5, 7]
    assert state[word_id_of(IMAGE, 3, 1, 1)]["valid_labels"] == ",DATE,"
    assert state[word_id_of(IMAGE, 1, 1, 2)]["valid_labels"] == ",TOTAL,"
    assert deleted not in state
