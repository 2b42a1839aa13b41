"""Fixtures for the consumer tests: a manual clock, a full local rig, and a
plain-Python model of what a collection should hold after some events."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from journal.deltas import DeltaRecords, write_delta
from journal.events import (
    DeltaMerge,
    Envelope,
    LabelUpdate,
    MetadataUpdate,
    NewEvent,
    Payload,
    RecordsDelete,
)
from journal.ids import line_id_of, word_id_of
from journal.labels import label_metadata
from journal.local_store import LocalObjectStore
from journal.sqlite import SQLiteJournal
from pipeline.chroma import RecordPage
from pipeline.config import ConsumerConfig
from pipeline.consumer import Consumer
from pipeline.digest import Digest, digest_of_path
from pipeline.lease_local import LocalLease
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore

T0 = datetime(2026, 12, 3, 16, 15, 30, tzinfo=UTC)
DIM = 8
IMAGE = "3f2a9c1e-0b7d-4e55-9a21-6c0d8e4f1a2b"
OTHER_IMAGE = "a1b2c3d4-0000-4000-8000-000000000001"


class ManualClock:
    """Stands still until a test (or :meth:`tick`) moves it."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class TickingClock(ManualClock):
    """Moves a millisecond forward on every reading, like a real clock."""

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def envelope(payload: Payload, seq: int = 1, collection: str = "words") -> Envelope:
    """An event as the journal would hand it out."""
    return Envelope(
        collection=collection,
        seq=seq,
        event_id=f"event-{seq}",
        recorded_at=T0,
        producer="test",
        payload=payload,
    )


# -- records -------------------------------------------------------------------


def page_of(records: DeltaRecords) -> RecordPage:
    """Delta records as a page to upsert directly."""
    return RecordPage(
        records.ids,
        records.embeddings,
        list(records.documents),
        list(records.metadatas),
    )


def word_records(
    image_id: str = IMAGE,
    receipt_id: int = 1,
    *,
    lines: int = 2,
    words: int = 3,
    seed: int = 0,
    extra: dict[str, Any] | None = None,
) -> DeltaRecords:
    """Word records of one receipt with the receipts model's metadata."""
    rng = np.random.default_rng(seed)
    ids, docs, metas = [], [], []
    for line in range(1, lines + 1):
        for word in range(1, words + 1):
            ids.append(word_id_of(image_id, receipt_id, line, word))
            docs.append(f"word {line}.{word} s{seed}")
            metas.append(
                {
                    "image_id": image_id,
                    "receipt_id": receipt_id,
                    "line_id": line,
                    "word_id": word,
                    "text": f"w{line}{word}",
                    **(extra or {}),
                }
            )
    embeddings = rng.standard_normal((len(ids), DIM)).astype(np.float32)
    return DeltaRecords(ids, embeddings, docs, metas)


def line_records(
    image_id: str = IMAGE, receipt_id: int = 1, *, lines: int = 3, seed: int = 0
) -> DeltaRecords:
    """Line records of one receipt."""
    rng = np.random.default_rng(seed + 1000)
    ids = [line_id_of(image_id, receipt_id, line) for line in range(1, lines + 1)]
    docs = [f"line {line} s{seed}" for line in range(1, lines + 1)]
    metas: list[dict[str, Any]] = [
        {"image_id": image_id, "receipt_id": receipt_id, "line_id": line}
        for line in range(1, lines + 1)
    ]
    embeddings = rng.standard_normal((len(ids), DIM)).astype(np.float32)
    return DeltaRecords(ids, embeddings, docs, metas)


# -- the expected state ----------------------------------------------------------


@dataclass
class Model:
    """What a collection holds, computed without ChromaDB."""

    records: dict[str, tuple[np.ndarray, str, dict[str, Any]]] = field(
        default_factory=dict
    )

    def delta(self, records: DeltaRecords) -> None:
        for index, record_id in enumerate(records.ids):
            stored = self.records.get(record_id)
            merged = {**(stored[2] if stored else {}), **records.metadatas[index]}
            self.records[record_id] = (
                records.embeddings[index],
                records.documents[index],
                merged,
            )

    def change(self, ids: list[str], changes: dict[str, Any]) -> None:
        for record_id in ids:
            vector, doc, meta = self.records[record_id]
            meta = {**meta, **changes}
            self.records[record_id] = (
                vector,
                doc,
                {k: v for k, v in meta.items() if v is not None},
            )

    def matching(self, **terms: Any) -> list[str]:
        return [
            record_id
            for record_id, (_, _, meta) in self.records.items()
            if all(meta.get(key) == value for key, value in terms.items())
        ]

    def apply(self, payload: Payload, deltas: dict[str, DeltaRecords]) -> None:
        match payload:
            case DeltaMerge():
                self.delta(deltas[payload.key])
            case MetadataUpdate():
                ids = self.matching(
                    image_id=payload.image_id, receipt_id=payload.receipt_id
                )
                self.change(ids, dict(payload.changes))
            case LabelUpdate():
                word = word_id_of(
                    payload.image_id,
                    payload.receipt_id,
                    payload.line_id,
                    payload.word_id,
                )
                if word in self.records:
                    self.change([word], dict(label_metadata(payload)))
            case RecordsDelete():
                terms: dict[str, Any] = {
                    "image_id": payload.image_id,
                    "receipt_id": payload.receipt_id,
                }
                if payload.line_id is not None:
                    terms["line_id"] = payload.line_id
                if payload.word_id is not None:
                    terms["word_id"] = payload.word_id
                for record_id in self.matching(**terms):
                    del self.records[record_id]
            case _:
                pass


def build_directly(path: Path, name: str, model: Model, space: str) -> None:
    """A ChromaDB directory holding the model's records, written with
    chromadb itself (not with the consumer's code)."""
    import chromadb
    from chromadb.config import Settings

    client: Any = chromadb.PersistentClient(
        path=str(path.resolve()), settings=Settings(anonymized_telemetry=False)
    )
    try:
        collection = client.create_collection(
            name, metadata={"hnsw:space": space}, embedding_function=None
        )
        ids = sorted(model.records)
        if ids:
            collection.add(
                ids=ids,
                embeddings=np.stack([model.records[i][0] for i in ids]),
                documents=[model.records[i][1] for i in ids],
                metadatas=[model.records[i][2] for i in ids],
            )
    finally:
        client.close()


def expected_digest(tmp: Path, name: str, model: Model, space: str) -> Digest:
    """The digest of the model's records stored by chromadb directly."""
    path = tmp / f"expected-{name}-{len(list(tmp.glob('expected-*')))}"
    build_directly(path, name, model, space)
    return digest_of_path(path, name)


# -- the rig ---------------------------------------------------------------------


@dataclass
class Rig:
    """Journal, object store, shared store, lease and status over tmp_path."""

    tmp: Path
    clock: ManualClock
    journal: SQLiteJournal
    objects: LocalObjectStore
    shared: SharedStore
    lease: LocalLease
    status: SQLiteStatusStore
    config: ConsumerConfig
    deltas: dict[str, DeltaRecords] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)
    consumers: list[Consumer] = field(default_factory=list)

    @property
    def staging(self) -> Path:
        return self.tmp / "staging"

    def consumer(self, owner: str = "consumer-a", **kwargs: Any) -> Consumer:
        config = kwargs.pop("config", self.config)
        consumer = Consumer(
            self.journal,
            self.objects,
            self.shared,
            kwargs.pop("staging_root", self.staging),
            self.lease,
            self.status,
            config,
            owner=owner,
            clock=self.clock,
            sleep=kwargs.pop("sleep", lambda _seconds: None),
            **kwargs,
        )
        self.consumers.append(consumer)
        return consumer

    def append(self, collection: str, payload: Payload) -> Envelope:
        """Append an event and apply it to the collection's model."""
        self.clock.advance(0.01)
        envelope = self.journal.append(
            NewEvent(collection=collection, payload=payload, producer="test")
        ).envelope
        self.models.setdefault(collection, Model()).apply(payload, self.deltas)
        return envelope

    def delta(self, collection: str, records: DeltaRecords) -> Envelope:
        payload = write_delta(
            self.objects, collection, records, workdir=self.tmp / "build"
        )
        self.deltas[payload.key] = records
        return self.append(collection, payload)

    def expected(self, collection: str) -> Digest:
        model = self.models.get(collection, Model())
        return expected_digest(self.tmp, collection, model, self.config.hnsw_space)

    def live_digest(self, collection: str) -> Digest:
        """The digest of the live version, recomputed from its files."""
        return digest_of_path(self.shared.live_path(collection), collection)


@pytest.fixture
def rig(tmp_path: Path, clock: ManualClock) -> Iterator[Rig]:
    (tmp_path / "build").mkdir()
    journal = SQLiteJournal(tmp_path / "journal.sqlite3", clock=clock)
    status = SQLiteStatusStore(tmp_path / "status.sqlite3")
    rig = Rig(
        tmp=tmp_path,
        clock=clock,
        journal=journal,
        objects=LocalObjectStore(tmp_path / "objects"),
        shared=SharedStore(tmp_path / "chroma", clock=TickingClock(T0)),
        lease=LocalLease(tmp_path / "leases", clock=clock),
        status=status,
        config=ConsumerConfig(
            group_commit_max_seconds=0,
            retry_wait_seconds=0,
            apply_attempts=2,
            versions_grace_seconds=0,
            versions_keep=3,
        ),
    )
    yield rig
    for consumer in rig.consumers:
        consumer.close()
    journal.close()
    status.close()


def small_config(**changes: Any) -> ConsumerConfig:
    """The rig's config with some fields changed."""
    base = ConsumerConfig(
        group_commit_max_seconds=0,
        retry_wait_seconds=0,
        apply_attempts=2,
        versions_grace_seconds=0,
        versions_keep=3,
    )
    return replace(base, **changes)
