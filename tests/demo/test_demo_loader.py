"""Loading the demo into a SQLite journal and a local object store."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from chroma_journal.demo.embedder import HashingEmbedder
from chroma_journal.demo.loader import execute_plan, load_demo, read_receipts
from chroma_journal.demo.plan import PlannedDelta, plan_demo
from journal.deltas import fetch_delta, iter_delta_records, write_delta
from journal.events import DeltaMerge
from journal.local_store import LocalObjectStore
from journal.sqlite import SQLiteJournal

SMALL = HashingEmbedder(dimension=32)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SQLiteJournal]:
    opened = SQLiteJournal(tmp_path / "journal.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
def objects(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def _kinds(journal: SQLiteJournal, collection: str) -> Counter[str]:
    return Counter(envelope.type for envelope in journal.read(collection))


def _sroie(root: Path) -> Path:
    for name in ("X001", "X002"):
        (root / "box").mkdir(parents=True, exist_ok=True)
        (root / "entities").mkdir(parents=True, exist_ok=True)
        (root / "box" / f"{name}.txt").write_text("0,0,9,0,9,9,0,9,HELLO THERE\n")
        (root / "entities" / f"{name}.txt").write_text(
            json.dumps({"company": f"SHOP {name}"})
        )
    return root


def test_load_appends_every_planned_event(
    journal: SQLiteJournal, objects: LocalObjectStore
) -> None:
    summary = load_demo(journal, objects, limit=5, embedder=SMALL)

    assert summary.receipts_read == 5
    assert summary.deltas_written == 2
    assert "receipts read: 5" in summary.describe()
    assert summary.events_appended == len(summary.plan.steps)
    for collection, stats in summary.collections.items():
        assert journal.head(collection) == stats.events_appended
        assert stats.events_planned == stats.events_appended
    assert _kinds(journal, "lines") == Counter({"delta_merge": 1, "records_delete": 1})
    assert _kinds(journal, "words")["label_update"] > 0


def test_second_run_appends_and_writes_nothing(
    journal: SQLiteJournal, objects: LocalObjectStore
) -> None:
    load_demo(journal, objects, limit=3, embedder=SMALL)
    heads = {name: journal.head(name) for name in journal.collections()}
    stored = objects.list("")

    again = load_demo(journal, objects, limit=3, embedder=SMALL)

    assert again.events_appended == 0
    assert again.deltas_written == 0
    assert {name: journal.head(name) for name in journal.collections()} == heads
    assert objects.list("") == stored


def test_stored_delta_holds_the_planned_records(
    journal: SQLiteJournal, objects: LocalObjectStore, tmp_path: Path
) -> None:
    summary = load_demo(journal, objects, limit=2, embedder=SMALL)
    planned = summary.plan.steps[1]
    assert isinstance(planned, PlannedDelta)
    event = next(journal.read("words"))
    assert isinstance(event.payload, DeltaMerge)
    assert event.idempotency_key == planned.idempotency_key

    directory = fetch_delta(objects, event.payload, tmp_path / "fetched")
    (records,) = iter_delta_records(directory)

    order = np.argsort(records.ids)
    wanted = np.argsort(planned.records.ids)
    assert sorted(records.ids) == sorted(planned.records.ids)
    assert np.array_equal(records.embeddings[order], planned.records.embeddings[wanted])
    by_id = dict(zip(records.ids, records.metadatas, strict=True))
    for index, record_id in enumerate(planned.records.ids):
        assert by_id[record_id] == planned.records.metadatas[index]


def test_delta_left_by_an_interrupted_run_is_reused(
    journal: SQLiteJournal, objects: LocalObjectStore
) -> None:
    plan = plan_demo(read_receipts(limit=2), SMALL)
    first = plan.steps[0]
    assert isinstance(first, PlannedDelta)
    # The interrupted run wrote the delta, then stopped before appending.
    left = write_delta(
        objects, first.collection, first.records, delta_id=first.delta_id
    )

    summary = execute_plan(journal, objects, plan)

    assert summary.collections["lines"].deltas_written == 0
    assert summary.collections["words"].deltas_written == 1
    event = next(journal.read("lines"))
    assert event.payload == left


def test_progress_reports_events_handled(
    journal: SQLiteJournal, objects: LocalObjectStore
) -> None:
    seen: list[int] = []

    summary = load_demo(journal, objects, limit=2, embedder=SMALL, progress=seen.append)

    assert len(seen) > 1
    assert all(count > 0 for count in seen)
    assert sum(seen) == len(summary.plan.steps)


def test_sroie_merchants_are_appended_to_both_collections(
    journal: SQLiteJournal, objects: LocalObjectStore, tmp_path: Path
) -> None:
    summary = load_demo(
        journal,
        objects,
        sroie_dir=_sroie(tmp_path / "sroie"),
        limit=1,
        embedder=SMALL,
        producer="test-loader",
    )

    assert summary.receipts_read == 2
    for collection in ("lines", "words"):
        events = list(journal.read(collection))
        assert [e.type for e in events].count("metadata_update") == 1
        assert {e.producer for e in events} == {"test-loader"}


@pytest.mark.slow
def test_all_shipped_samples_load(
    journal: SQLiteJournal, objects: LocalObjectStore
) -> None:
    summary = load_demo(journal, objects)

    assert summary.receipts_read == 100
    assert summary.collections["lines"].records == 805
    assert summary.collections["words"].records == 2357
    assert journal.head("lines") == 5 + 1
    assert journal.head("words") == 5 + 1693 + 1
