"""Compacting a working copy's SQLite file: fewer bytes, the same records."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
from pipeline_rig import IMAGE, Rig, word_records
from structlog.testing import capture_logs

from journal.deltas import CHROMA_FILE
from journal.events import RecordsDelete
from pipeline.compaction import compact
from pipeline.digest import digest_of_path

NAME = "words"


def pragma(path: Path, name: str) -> int:
    with contextlib.closing(sqlite3.connect(path / CHROMA_FILE)) as db:
        return int(db.execute(f"PRAGMA {name}").fetchone()[0])


def chroma_dir(path: Path, records: int, deleted: int) -> Path:
    """A collection written by chromadb itself, ``deleted`` of whose
    ``records`` were then deleted again (leaving free pages)."""
    import chromadb
    from chromadb.config import Settings

    client: Any = chromadb.PersistentClient(
        path=str(path), settings=Settings(anonymized_telemetry=False)
    )
    try:
        collection = client.create_collection(
            NAME, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )
        rng = np.random.default_rng(7)
        ids = [f"r{i:05d}" for i in range(records)]
        collection.add(
            ids=ids,
            embeddings=rng.standard_normal((records, 16)).astype(np.float32),
            documents=[f"document number {i} " * 8 for i in range(records)],
            metadatas=[{"n": i, "text": f"word {i}"} for i in range(records)],
        )
        if deleted:
            collection.delete(ids=ids[:deleted])
    finally:
        client.close()
    return path


def test_the_first_compaction_switches_to_incremental_mode_and_keeps_every_record(
    tmp_path: Path,
) -> None:
    path = chroma_dir(tmp_path / "c", records=3000, deleted=2500)
    before = digest_of_path(path, NAME)
    assert pragma(path, "freelist_count") > 0

    done = compact(path)

    assert done is not None
    assert done.converted
    assert done.free_pages > 0
    assert done.bytes_after < done.bytes_before
    assert (path / CHROMA_FILE).stat().st_size == done.bytes_after
    assert pragma(path, "auto_vacuum") == 2
    assert pragma(path, "freelist_count") == 0
    assert digest_of_path(path, NAME) == before


def test_later_compactions_are_incremental(tmp_path: Path) -> None:
    path = chroma_dir(tmp_path / "c", records=3000, deleted=500)
    assert compact(path) is not None
    import chromadb
    from chromadb.config import Settings

    client: Any = chromadb.PersistentClient(
        path=str(path), settings=Settings(anonymized_telemetry=False)
    )
    try:
        client.get_collection(NAME).delete(ids=[f"r{i:05d}" for i in range(500, 2500)])
    finally:
        client.close()
    before = digest_of_path(path, NAME)
    assert pragma(path, "freelist_count") > 0

    done = compact(path)

    assert done is not None
    assert not done.converted
    assert done.bytes_after < done.bytes_before
    assert pragma(path, "freelist_count") == 0
    assert digest_of_path(path, NAME) == before


def test_nothing_to_compact(tmp_path: Path) -> None:
    assert compact(tmp_path) is None  # no SQLite file at all
    path = chroma_dir(tmp_path / "c", records=10, deleted=0)
    if pragma(path, "freelist_count"):
        assert compact(path) is not None
    assert compact(path) is None  # no free pages left


def test_a_failed_compaction_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = chroma_dir(tmp_path / "c", records=3000, deleted=2500)
    size = (path / CHROMA_FILE).stat().st_size
    holder = sqlite3.connect(path / CHROMA_FILE, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with capture_logs() as logs:
            assert compact(path) is None
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert [e["event"] for e in logs] == ["sqlite_compaction_failed"]
    assert "locked" in logs[0]["error"]
    assert (path / CHROMA_FILE).stat().st_size == size
    assert pragma(path, "auto_vacuum") == 0


def test_the_consumer_publishes_compacted_versions(rig: Rig) -> None:
    rig.delta("words", word_records(IMAGE, 1, lines=40, words=25))
    rig.append("words", RecordsDelete(image_id=IMAGE, receipt_id=1))
    rig.delta("words", word_records(IMAGE, 2))

    rig.consumer().catch_up()

    live = rig.shared.live_path("words")
    assert pragma(live, "auto_vacuum") == 2
    assert pragma(live, "freelist_count") == 0
    expected = rig.expected("words")
    assert rig.live_digest("words") == expected
