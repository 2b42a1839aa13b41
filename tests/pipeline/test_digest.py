"""The content digest: what it covers, and that the incremental form agrees
with a full scan."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from pipeline_rig import IMAGE, page_of, word_records

from journal.deltas import DeltaRecords
from pipeline.chroma import ChromaCollection, open_collection
from pipeline.digest import (
    RecordHashes,
    digest_format,
    digest_of_collection,
    digest_of_path,
    record_hash,
)
from pipeline.files import seal_tree

VECTOR = np.arange(4, dtype=np.float32)


def test_record_hash_separates_its_fields() -> None:
    assert record_hash("ab", VECTOR, "c", {}) != record_hash("a", VECTOR, "bc", {})
    assert record_hash("a", VECTOR, None, {}) != record_hash("a", VECTOR, "", {})
    assert record_hash("a", VECTOR, "d", {"k": 1}) != record_hash(
        "a", VECTOR, "d", {"k": "1"}
    )
    assert record_hash("a", VECTOR, "d", {}) != record_hash("a", VECTOR + 1, "d", {})


def test_record_hash_is_canonical_in_metadata_order_and_vector_dtype() -> None:
    one = record_hash("a", VECTOR, "d", {"x": 1, "y": "z"})
    other = record_hash("a", VECTOR.astype(np.float64), "d", {"y": "z", "x": 1})

    assert one == other
    assert record_hash("a", VECTOR, "d", None) == record_hash("a", VECTOR, "d", {})


def test_digest_does_not_depend_on_insertion_order(tmp_path: Path) -> None:
    records = word_records(IMAGE, 1, lines=3, words=4)
    order = list(reversed(range(len(records))))
    reordered = DeltaRecords(
        [records.ids[i] for i in order],
        records.embeddings[order],
        [records.documents[i] for i in order],
        [records.metadatas[i] for i in order],
    )
    digests = []
    for name, batch in (("a", records), ("b", reordered)):
        with open_collection(tmp_path / name, "words", space="cosine") as collection:
            collection.upsert(page_of(batch))
            digests.append(digest_of_collection(collection))

    assert digests[0] == digests[1]
    assert digests[0].count == 12


def test_full_scan_pages_through_the_collection(tmp_path: Path) -> None:
    with open_collection(tmp_path / "c", "words", space="l2") as collection:
        collection.upsert(page_of(word_records(IMAGE, 1, lines=4, words=5)))

        paged = RecordHashes()
        for page in collection.pages(page_size=3):
            assert len(page) <= 3
            paged.add(page)

        assert paged.digest() == digest_of_collection(collection)


def mutate(collection: ChromaCollection) -> set[str]:
    """Upsert, update and delete some records; return the ids touched."""
    fresh = word_records(IMAGE, 2, lines=1, words=3, seed=9)
    collection.upsert(page_of(fresh))
    changed = [fresh.ids[0], word_records(IMAGE, 1).ids[0]]
    collection.update_metadatas(changed, {"merchant_name": "ACME"})
    gone = word_records(IMAGE, 1).ids[-2:]
    collection.delete(gone)
    return {*fresh.ids, *changed, *gone}


def test_refreshing_touched_ids_gives_the_full_scan_digest(tmp_path: Path) -> None:
    with open_collection(tmp_path / "c", "words", space="cosine") as collection:
        collection.upsert(page_of(word_records(IMAGE, 1)))
        hashes = RecordHashes.scan(collection)

        touched = mutate(collection)
        hashes.refresh(collection, touched)

        assert hashes.digest() == digest_of_collection(collection)
        assert hashes.digest().count == 6 + 3 - 2


def test_digest_stays_right_when_ids_come_and_go_between_digests(
    tmp_path: Path,
) -> None:
    """The id order is kept between digests: a refresh that only updates
    records must reuse it, one that adds or removes ids must not."""
    with open_collection(tmp_path / "c", "words", space="cosine") as collection:
        collection.upsert(page_of(word_records(IMAGE, 1)))
        hashes = RecordHashes.scan(collection)
        assert hashes.digest() == digest_of_collection(collection)

        updated = word_records(IMAGE, 1).ids[:2]
        collection.update_metadatas(updated, {"merchant_name": "ACME"})
        hashes.refresh(collection, updated)
        assert hashes.digest() == digest_of_collection(collection)

        fresh = word_records(IMAGE, 2, lines=1, words=3, seed=9)
        collection.upsert(page_of(fresh))
        hashes.refresh(collection, fresh.ids)
        assert hashes.digest() == digest_of_collection(collection)

        gone = fresh.ids[:1]
        collection.delete(gone)
        hashes.refresh(collection, gone)
        assert hashes.digest() == digest_of_collection(collection)
        assert gone[0] not in hashes


def test_a_metadata_only_refresh_gives_the_full_scan_digest(tmp_path: Path) -> None:
    """Labels and receipt metadata are refreshed from the metadata alone; an
    id never hashed before is read whole, and a deleted one is dropped."""
    with open_collection(tmp_path / "c", "words", space="cosine") as collection:
        collection.upsert(page_of(word_records(IMAGE, 1)))
        hashes = RecordHashes.scan(collection)
        ids = word_records(IMAGE, 1).ids
        collection.update_metadatas(ids[:3], {"valid_labels": ",TAX,"})
        collection.update_metadatas(ids[1:2], {"merchant_name": None})
        fresh = word_records(IMAGE, 2, lines=1, words=1)
        collection.upsert(page_of(fresh))  # unknown to the hashes
        collection.delete(ids[-1:])

        hashes.refresh(collection, (), metadata_only=[*ids[:3], *fresh.ids, ids[-1]])

        assert hashes.digest() == digest_of_collection(collection)
        assert ids[-1] not in hashes
        assert fresh.ids[0] in hashes


def v1_digest(records: DeltaRecords) -> str:
    """Digest format 1, written out independently of pipeline.digest."""

    def field(value: bytes) -> bytes:
        return struct.pack(">Q", len(value)) + value

    hashes = {}
    for i, record_id in enumerate(records.ids):
        document = records.documents[i]
        meta = json.dumps(records.metadatas[i], sort_keys=True, separators=(",", ":"))
        hashes[record_id] = hashlib.sha256(
            field(record_id.encode())
            + field(records.embeddings[i].astype("<f4").tobytes())
            + field(b"\x00" if document is None else b"\x01" + document.encode())
            + field(meta.encode())
        ).digest()
    return hashlib.sha256(b"".join(hashes[k] for k in sorted(hashes))).hexdigest()


def test_a_digest_names_its_format_and_format_1_is_still_computed(
    tmp_path: Path,
) -> None:
    with open_collection(tmp_path / "c", "words", space="cosine") as collection:
        collection.upsert(page_of(word_records(IMAGE, 1)))
        current = digest_of_collection(collection)
        legacy = digest_of_collection(collection, 1)
        # What ChromaDB returns, not what was written: float32 embeddings can
        # come back different in their last bit.
        (stored,) = collection.pages()
    records = DeltaRecords(
        stored.ids, stored.embeddings, stored.documents, stored.metadatas
    )

    assert current.hexdigest.startswith("v2:") and len(current.hexdigest) == 67
    assert legacy.hexdigest == v1_digest(records)
    assert (digest_format(current.hexdigest), digest_format(legacy.hexdigest)) == (2, 1)
    with pytest.raises(ValueError, match="not a content digest"):
        digest_format("v3:abc")


def test_record_hashes_survive_a_save_and_load(tmp_path: Path) -> None:
    with open_collection(tmp_path / "c", "words", space="l2") as collection:
        collection.upsert(page_of(word_records(IMAGE, 1)))
        hashes = RecordHashes.scan(collection)
    hashes.save(tmp_path / "hashes.bin")

    assert RecordHashes.load(tmp_path / "hashes.bin").digest() == hashes.digest()

    data = (tmp_path / "hashes.bin").read_bytes()
    (tmp_path / "hashes.bin").write_bytes(data[:-5])
    with pytest.raises(ValueError, match="truncated or damaged"):
        RecordHashes.load(tmp_path / "hashes.bin")

    # A damaged body hash does not show in the digest; the checksum catches it.
    record_id = word_records(IMAGE, 1).ids[0].encode()
    damaged = bytearray(data)
    damaged[data.index(record_id) + len(record_id) + 32] ^= 1
    (tmp_path / "hashes.bin").write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="damaged"):
        RecordHashes.load(tmp_path / "hashes.bin")

    old_format = data.replace(b"record hashes 2", b"record hashes 1", 1)
    (tmp_path / "hashes.bin").write_bytes(old_format)
    with pytest.raises(ValueError, match="not a record hash file of this format"):
        RecordHashes.load(tmp_path / "hashes.bin")


def test_digest_of_path_reads_a_private_copy_of_a_sealed_directory(
    tmp_path: Path,
) -> None:
    source = tmp_path / "version"
    with open_collection(source, "words", space="cosine") as collection:
        collection.upsert(page_of(word_records(IMAGE, 1)))
        expected = digest_of_collection(collection)
    seal_tree(source)
    before = {
        p: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in source.rglob("*")
        if p.is_file()
    }

    assert digest_of_path(source, "words") == expected
    after = {
        p: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in source.rglob("*")
        if p.is_file()
    }
    assert after == before
