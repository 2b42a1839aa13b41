"""The receipt index against what ChromaDB itself stores: after a batch of
every kind of change, it places each record under the receipt ChromaDB's
own filter finds it under, and whatever metadata it claims to know is the
stored metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pipeline_rig import IMAGE, OTHER_IMAGE, envelope, page_of, word_records

from journal.deltas import DeltaRecords, write_delta
from journal.events import (
    LabelUpdate,
    MetadataUpdate,
    Payload,
    RecordsDelete,
)
from journal.ids import word_id_of
from journal.local_store import LocalObjectStore
from pipeline.applier import EventApplier
from pipeline.apply import ApplyContext, record_filter
from pipeline.chroma import ChromaCollection, open_collection
from pipeline.digest import RecordHashes
from pipeline.receipt_index import ReceiptIndex

KEYS = [(image, receipt) for image in (IMAGE, OTHER_IMAGE) for receipt in range(1, 6)]


def one_record(record_id: str, metadata: dict[str, Any]) -> DeltaRecords:
    vector = np.random.default_rng(7).standard_normal((1, 8)).astype(np.float32)
    return DeltaRecords([record_id], vector, ["moved"], [metadata])


def chromadb_view(
    collection: ChromaCollection,
) -> dict[tuple[str, int], dict[str, Any]]:
    found = collection.records_by_receipt(KEYS)
    return {key: dict(records) for key, records in found.items()}


def assert_agrees(index: ReceiptIndex, collection: ChromaCollection) -> None:
    stored = chromadb_view(collection)
    mine = index.records_of(collection, KEYS)
    assert {k: sorted(v) for k, v in stored.items()} == {
        k: sorted(i for i, _ in v) for k, v in mine.items()
    }
    known = 0
    for key, records in mine.items():
        for record_id, metadata in records:
            if metadata is not None:
                known += 1
                assert metadata == stored[key][record_id], record_id
    assert known, "the index should know some metadata exactly"


def test_a_batch_of_every_kind_leaves_the_index_agreeing_with_chromadb(
    tmp_path: Path,
) -> None:
    objects = LocalObjectStore(tmp_path / "objects")
    moved = word_id_of(IMAGE, 1, 2, 1)
    batch: list[Payload] = [
        # Moves a word of receipt 1 to receipt 2: the delta names only the
        # receipt_id, so ChromaDB keeps the stored image_id.
        write_delta(objects, "words", one_record(moved, {"receipt_id": 2})),
        # A new receipt, and a record with no receipt at all.
        write_delta(objects, "words", word_records(OTHER_IMAGE, 4, lines=1)),
        write_delta(objects, "words", one_record("loose", {"note": "x"})),
        MetadataUpdate(image_id=IMAGE, receipt_id=2, changes={"merchant": "A"}),
        MetadataUpdate(image_id=OTHER_IMAGE, receipt_id=4, changes={"tip": 0.1}),
        RecordsDelete(image_id=IMAGE, receipt_id=1, line_id=1),
        LabelUpdate(
            image_id=IMAGE, receipt_id=2, line_id=1, word_id=1, valid_labels=["TAX"]
        ),
        MetadataUpdate(image_id=IMAGE, receipt_id=2, changes={"merchant": None}),
        MetadataUpdate(image_id=IMAGE, receipt_id=3, changes={"rate": 0.3}),
        RecordsDelete(image_id=OTHER_IMAGE, receipt_id=1),
    ]
    with open_collection(tmp_path / "words", "words", space="l2") as collection:
        collection.upsert(page_of(word_records(IMAGE, 1)))
        collection.upsert(page_of(word_records(IMAGE, 2, lines=1, words=2)))
        collection.upsert(page_of(word_records(IMAGE, 3, lines=1, words=2)))
        collection.upsert(page_of(word_records(OTHER_IMAGE, 1, lines=1, words=1)))
        hashes = RecordHashes.scan(collection)
        index = hashes.receipts
        assert not index.built
        assert_agrees(index, collection)  # builds it
        assert index.built and len(index) == 6 + 2 + 2 + 1

        context = ApplyContext(objects, tmp_path / "scratch", receipts=index)
        applied = EventApplier().apply(
            collection,
            [envelope(p, seq) for seq, p in enumerate(batch, start=1)],
            context,
        )
        results = [result for _, result in applied]
        assert_agrees(index, collection)
        # What the batch left unknown (upserts, the float) becomes known
        # when the record hashes are refreshed at the end of the batch.
        touched = set().union(*(r.touched for r in results))
        hashes.refresh(
            collection,
            touched,
            set().union(*(r.metadata_touched for r in results)),
        )
        assert_agrees(index, collection)
        every = [i for records in chromadb_view(collection).values() for i in records]
        assert set(index.known_metadata(every)) == set(every)
        assert moved in chromadb_view(collection)[(IMAGE, 2)]
        assert hashes.digest() == RecordHashes.scan(collection).digest()


def test_reports_before_the_first_use_are_ignored_and_the_build_reads_the_collection(
    tmp_path: Path,
) -> None:
    index = ReceiptIndex()
    with open_collection(tmp_path / "words", "words", space="l2") as collection:
        collection.upsert(page_of(word_records(IMAGE, 1, lines=1, words=2)))
        index.upserted(["ghost"], [{"image_id": IMAGE, "receipt_id": 1}])
        index.removed([word_id_of(IMAGE, 1, 1, 1)])
        index.stored({"ghost": {"image_id": IMAGE, "receipt_id": 1}})
        assert index.known_metadata(["ghost"]) == {}
        found = index.records_of(collection, [(IMAGE, 1)])
    assert sorted(i for i, _ in found[(IMAGE, 1)]) == [
        word_id_of(IMAGE, 1, 1, 1),
        word_id_of(IMAGE, 1, 1, 2),
    ]
    assert all(metadata is not None for _, metadata in found[(IMAGE, 1)])


def test_equal_values_of_different_types_are_kept_apart(tmp_path: Path) -> None:
    """The index shares equal values between records to save memory; True,
    1 and 1.0 are equal in Python but hash differently in the digest."""
    base = {"image_id": IMAGE, "receipt_id": 1}
    values = {"a": True, "b": 1, "c": 1.0, "d": False, "e": 0}
    records = DeltaRecords(
        [f"r{key}" for key in values],
        np.ones((len(values), 4), dtype=np.float32),
        ["doc"] * len(values),
        [{**base, "flag": value} for value in values.values()],
    )
    with open_collection(tmp_path / "words", "words", space="l2") as collection:
        collection.upsert(page_of(records))
        index = ReceiptIndex()
        found = dict(index.records_of(collection, [(IMAGE, 1)])[(IMAGE, 1)])
    for key, value in values.items():
        stored = found[f"r{key}"]
        assert stored is not None
        assert (stored["flag"], type(stored["flag"])) == (value, type(value))


def test_an_upsert_naming_one_identity_key_of_an_unknown_record_rebuilds(
    tmp_path: Path,
) -> None:
    """Which receipt such a record lands in depends on a key the index does
    not hold, so it forgets everything and scans again on its next use."""
    with open_collection(tmp_path / "words", "words", space="l2") as collection:
        collection.upsert(page_of(one_record("loose", {"image_id": IMAGE})))
        collection.upsert(page_of(word_records(IMAGE, 1, lines=1, words=1)))
        index = ReceiptIndex()
        index.records_of(collection, [])
        index.changed(["loose"])  # its metadata (and so its image_id) unknown
        update = one_record("loose", {"receipt_id": 1})
        collection.upsert(page_of(update))
        index.upserted(update.ids, update.metadatas)
        assert not index.built
        assert_agrees(index, collection)
        assert "loose" in chromadb_view(collection)[(IMAGE, 1)]


def test_a_receipt_holds_what_chromadb_filters_match_whatever_the_stored_type(
    tmp_path: Path,
) -> None:
    """ChromaDB's ``$eq`` on an int receipt_id matches a stored int equal to
    it and a stored float equal to it as a float, never a bool or a string;
    the index and the run lookup must file records the same way."""
    big = 2**53 + 1
    stored: dict[str, Any] = {
        "int": 1,
        "float": 1.0,
        "bool": True,
        "half": 1.5,
        "text": "1",
        "big": big,
        "big_float": float(2**53),  # equals float(big) and float(2**53)
        "zero": 0,
        "false": False,
    }
    records = DeltaRecords(
        list(stored),
        np.ones((len(stored), 4), dtype=np.float32),
        ["doc"] * len(stored),
        [{"image_id": IMAGE, "receipt_id": value} for value in stored.values()],
    )
    keys = [(IMAGE, receipt) for receipt in (0, 1, 2, 2**53, big)]
    with open_collection(tmp_path / "words", "words", space="l2") as collection:
        collection.upsert(page_of(records))
        truth = {key: sorted(collection.ids_where(record_filter(*key))) for key in keys}
        by_lookup = collection.records_by_receipt(keys)
        by_index = ReceiptIndex().records_of(collection, keys)
    assert truth[(IMAGE, 1)] == ["float", "int"]
    assert truth[(IMAGE, big)] == ["big", "big_float"]
    for found in (by_lookup, by_index):
        assert {key: sorted(i for i, _ in found.get(key, [])) for key in keys} == truth
