"""The snapshot tests' rig: a consumer wired to a Snapshotter, over the
local object store or moto S3."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from journal.deltas import DeltaRecords, write_delta
from journal.events import Envelope, NewEvent, Payload, SnapshotRequest
from journal.ids import word_id_of
from journal.local_store import LocalObjectStore
from journal.objectstore import ObjectStore
from journal.sqlite import SQLiteJournal
from pipeline.config import ConsumerConfig
from pipeline.consumer import Consumer
from pipeline.lease_local import LocalLease
from pipeline.snapshots import SnapshotConfig, Snapshotter
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore
from tests.aws.moto_s3 import s3_store

T0 = datetime(2026, 12, 3, 16, 15, 30, tzinfo=UTC)
DIM = 8
IMAGE = "3f2a9c1e-0b7d-4e55-9a21-6c0d8e4f1a2b"
COLLECTION = "words"


class ManualClock:
    """Stands still until a test moves it."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class TickingClock(ManualClock):
    """A millisecond later on every reading (version ids must sort)."""

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def word_records(receipt_id: int, *, words: int = 6, seed: int = 0) -> DeltaRecords:
    """``words`` word records of one receipt, ``DIM``-dimensional."""
    rng = np.random.default_rng(seed)
    ids = [word_id_of(IMAGE, receipt_id, 1, w) for w in range(1, words + 1)]
    metas: list[dict[str, Any]] = [
        {
            "image_id": IMAGE,
            "receipt_id": receipt_id,
            "line_id": 1,
            "word_id": w,
            "text": f"w{w}",
        }
        for w in range(1, words + 1)
    ]
    embeddings = rng.standard_normal((words, DIM)).astype(np.float32)
    return DeltaRecords(ids, embeddings, [f"word {w}" for w in range(words)], metas)


@dataclass
class Rig:
    """Journal, object store, shared store and a consumer that snapshots."""

    tmp: Path
    clock: ManualClock
    journal: SQLiteJournal
    objects: ObjectStore
    shared: SharedStore
    lease: LocalLease
    status: SQLiteStatusStore
    config: ConsumerConfig = field(
        default_factory=lambda: ConsumerConfig(
            group_commit_max_seconds=0,
            retry_wait_seconds=0,
            apply_attempts=1,
            versions_grace_seconds=0,
            versions_keep=2,
        )
    )
    consumers: list[Consumer] = field(default_factory=list)

    def snapshotter(self, **config: Any) -> Snapshotter:
        return Snapshotter(
            self.objects,
            self.journal,
            self.shared,
            config=SnapshotConfig(**config),
            clock=self.clock,
        )

    def consumer(
        self, snapshotter: Snapshotter | None = None, *, snapshots: bool = True
    ) -> Consumer:
        """A consumer whose hook is ``snapshotter`` (default: a new one), or
        none without ``snapshots``."""
        hook = (snapshotter or self.snapshotter()).after_promote if snapshots else None
        consumer = Consumer(
            self.journal,
            self.objects,
            self.shared,
            self.tmp / "staging",
            self.lease,
            self.status,
            self.config,
            owner="consumer-a",
            clock=self.clock,
            sleep=lambda _seconds: None,
            after_promote=hook,
        )
        self.consumers.append(consumer)
        return consumer

    def append(self, payload: Payload, collection: str = COLLECTION) -> Envelope:
        self.clock.advance(0.01)
        return self.journal.append(
            NewEvent(collection=collection, payload=payload, producer="test")
        ).envelope

    def delta(self, receipt_id: int, *, words: int = 6, seed: int = 0) -> Envelope:
        records = word_records(receipt_id, words=words, seed=seed)
        payload = write_delta(
            self.objects, COLLECTION, records, workdir=self.tmp / "build"
        )
        return self.append(payload)

    def request(self, reason: str = "") -> Envelope:
        return self.append(SnapshotRequest(reason=reason))

    def events_of(self, kind: str, collection: str = COLLECTION) -> list[Envelope]:
        return [e for e in self.journal.read(collection) if e.payload.type == kind]


StoreFactory = Callable[[pytest.FixtureRequest, Path], ObjectStore]


def _local(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
    return LocalObjectStore(tmp / "objects")


def _s3(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
    return s3_store(request, prefix="env")


STORES: dict[str, StoreFactory] = {"local": _local, "s3": _s3}


def make_rig(request: pytest.FixtureRequest, tmp: Path, store: str) -> Rig:
    (tmp / "build").mkdir()
    clock = ManualClock()
    return Rig(
        tmp=tmp,
        clock=clock,
        journal=SQLiteJournal(tmp / "journal.sqlite3", clock=clock),
        objects=STORES[store](request, tmp),
        shared=SharedStore(tmp / "chroma", clock=TickingClock(T0)),
        lease=LocalLease(tmp / "leases", clock=clock),
        status=SQLiteStatusStore(tmp / "status.sqlite3"),
    )


def close_rig(rig: Rig) -> None:
    for consumer in rig.consumers:
        consumer.close()
    rig.journal.close()
    rig.status.close()
