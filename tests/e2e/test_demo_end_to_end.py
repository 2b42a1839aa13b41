"""The demo receipts through journal and consumer equal ChromaDB built directly.

The expected records come from an independent in-memory reading of the
events (:func:`chroma_journal.demo.expected_final_records`), label
corrections and the receipt deletion included; they are written with
chromadb itself, not with the consumer's code, and both sides are compared
by content digest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings

from chroma_journal.demo import (
    HashingEmbedder,
    execute_plan,
    expected_final_records,
    plan_demo,
    read_receipts,
)
from chroma_journal.demo.expected import ExpectedRecord
from journal.local_store import LocalObjectStore
from journal.sqlite import SQLiteJournal
from pipeline.config import ConsumerConfig
from pipeline.consumer import Consumer
from pipeline.digest import Digest, digest_of_path
from pipeline.lease_local import LocalLease
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore

RECEIPTS = 25
SPACE = "cosine"


def build_directly(path: Path, name: str, records: dict[str, ExpectedRecord]) -> None:
    client: Any = chromadb.PersistentClient(
        path=str(path.resolve()), settings=ChromaSettings(anonymized_telemetry=False)
    )
    try:
        collection = client.create_collection(
            name, metadata={"hnsw:space": SPACE}, embedding_function=None
        )
        ids = sorted(records)
        collection.add(
            ids=ids,
            embeddings=np.stack([records[i].embedding for i in ids]),
            documents=[records[i].document for i in ids],
            metadatas=[dict(records[i].metadata) for i in ids],
        )
    finally:
        client.close()


def consumer_over(
    tmp: Path, journal: SQLiteJournal, objects: LocalObjectStore
) -> Consumer:
    return Consumer(
        journal,
        objects,
        SharedStore(tmp / "chroma"),
        tmp / "staging",
        LocalLease(tmp / "leases"),
        SQLiteStatusStore(tmp / "status.sqlite3"),
        ConsumerConfig(group_commit_max_seconds=0, group_commit_max_events=200),
        owner="e2e",
    )


@pytest.mark.slow
def test_live_collections_equal_chromadb_built_from_expected_records(
    tmp_path: Path,
) -> None:
    plan = plan_demo(read_receipts(limit=RECEIPTS), HashingEmbedder())
    journal = SQLiteJournal(tmp_path / "journal.sqlite3")
    objects = LocalObjectStore(tmp_path / "objects")
    execute_plan(journal, objects, plan)
    consumer = consumer_over(tmp_path, journal, objects)
    try:
        consumer.catch_up()
        assert consumer.blocked() == {}
        live = {
            name: digest_of_path(consumer.shared.live_path(name), name)
            for name in ("lines", "words")
        }
    finally:
        consumer.close()
        journal.close()

    expected: dict[str, Digest] = {}
    for name, records in expected_final_records(plan).items():
        build_directly(tmp_path / f"direct-{name}", name, records)
        expected[name] = digest_of_path(tmp_path / f"direct-{name}", name)

    assert live == expected
    # The deletion is part of what was compared: fewer records than loaded.
    for name in ("lines", "words"):
        assert 0 < live[name].count < plan.records(name)
