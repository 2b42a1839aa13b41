"""The replay tests' rig: journal, object store, shared store, lease and
status on local disk with the real consumer, a journal history of several
kinds of events to rebuild, and injectable faults.

Kept out of ``conftest.py`` under a name of its own, so that test modules
import it by name whichever directories pytest was pointed at."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from journal.deltas import DeltaRecords, write_delta
from journal.events import (
    DeltaMerge,
    Envelope,
    EventParked,
    LabelUpdate,
    MetadataUpdate,
    NewEvent,
    Payload,
    RecordsDelete,
    SnapshotRecorded,
    SnapshotRequest,
)
from journal.ids import word_id_of
from journal.local_store import LocalObjectStore
from journal.sqlite import SQLiteJournal
from pipeline.chroma import open_collection
from pipeline.config import ConsumerConfig
from pipeline.consumer import AfterPromote, Consumer
from pipeline.lease_local import LocalLease
from pipeline.manifest import Manifest, copy_version
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore
from replay.builder import Rebuilder, ReplayConfig
from replay.plan import LATEST, ReplayPlan, Target, plan_rebuild
from replay.sources import SnapshotSource

T0 = datetime(2026, 12, 3, 16, 15, 30, tzinfo=UTC)
DIM = 8
WORDS = "words"
IMAGE = "3f2a9c1e-0b7d-4e55-9a21-6c0d8e4f1a2b"


class ManualClock:
    """Stands still until moved."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class TickingClock(ManualClock):
    """A millisecond later on every reading (version ids must differ)."""

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def word_records(
    receipt_id: int, *, lines: int = 2, words: int = 3, seed: int = 0
) -> DeltaRecords:
    """Word records of one receipt, with the receipts model's metadata."""
    rng = np.random.default_rng(seed * 100 + receipt_id)
    ids, docs, metas = [], [], []
    for line in range(1, lines + 1):
        for word in range(1, words + 1):
            ids.append(word_id_of(IMAGE, receipt_id, line, word))
            docs.append(f"word {receipt_id}.{line}.{word} s{seed}")
            metas.append(
                {
                    "image_id": IMAGE,
                    "receipt_id": receipt_id,
                    "line_id": line,
                    "word_id": word,
                    "text": f"w{line}{word}",
                    "confidence": 0.5 + seed / 10,
                }
            )
    embeddings = rng.standard_normal((len(ids), DIM)).astype(np.float32)
    return DeltaRecords(ids, embeddings, docs, metas)


def label(receipt_id: int, line: int, word: int, **fields: Any) -> LabelUpdate:
    """A label update of one word."""
    return LabelUpdate(
        image_id=IMAGE, receipt_id=receipt_id, line_id=line, word_id=word, **fields
    )


#: Delta archives by content: building one with ChromaDB takes a fraction of
#: a second, and the tests build the same few again and again.
_DELTAS: dict[tuple[str, str], tuple[DeltaMerge, bytes]] = {}


def _fingerprint(records: DeltaRecords) -> str:
    digest = hashlib.sha256(records.embeddings.tobytes())
    digest.update(
        json.dumps([records.ids, records.documents, records.metadatas]).encode()
    )
    return digest.hexdigest()


@dataclass
class Rig:
    """Journal, object store, shared store, lease and status over a tmp dir."""

    tmp: Path
    clock: ManualClock
    journal: SQLiteJournal
    objects: LocalObjectStore
    shared: SharedStore
    lease: LocalLease
    status: SQLiteStatusStore
    config: ConsumerConfig
    consumers: list[Consumer] = field(default_factory=list)

    def consumer(
        self,
        owner: str = "consumer-a",
        after_promote: AfterPromote | None = None,
        **changes: Any,
    ) -> Consumer:
        consumer = Consumer(
            self.journal,
            self.objects,
            self.shared,
            self.tmp / "staging",
            self.lease,
            self.status,
            replace(self.config, **changes),
            owner=owner,
            clock=self.clock,
            sleep=lambda _seconds: None,
            after_promote=after_promote,
        )
        self.consumers.append(consumer)
        return consumer

    def append(self, payload: Payload, collection: str = WORDS) -> Envelope:
        """Append one event, a second after the previous one."""
        self.clock.advance(1.0)
        event = NewEvent(collection=collection, payload=payload, producer="test")
        return self.journal.append(event).envelope

    def delta(self, records: DeltaRecords, collection: str = WORDS) -> Envelope:
        """Write (or reuse from the session cache) a delta and append it."""
        cached = _DELTAS.get((collection, _fingerprint(records)))
        if cached is None:
            payload = write_delta(
                self.objects, collection, records, workdir=self.tmp / "build"
            )
            cached = (payload, self.objects.get_bytes(payload.key))
            _DELTAS[(collection, _fingerprint(records))] = cached
        else:
            self.objects.put_bytes(cached[0].key, cached[1])
        return self.append(cached[0], collection)

    def rebuilder(
        self, objects: LocalObjectStore | None = None, **changes: Any
    ) -> Rebuilder:
        config = replace(ReplayConfig.from_consumer(self.config), **changes)
        return Rebuilder(
            self.journal, objects or self.objects, config, sleep=lambda _s: None
        )

    def plan(
        self,
        target: Target | None = None,
        *,
        sources: list[SnapshotSource] | None = None,
        base: str = LATEST,
        collection: str = WORDS,
    ) -> ReplayPlan:
        return plan_rebuild(
            self.journal,
            collection,
            target or Target(),
            sources or [],
            base=base,
            objects=self.objects,
        )

    def tamper_live(self, record_id: str, changes: dict[str, Any]) -> Manifest:
        """Promote a copy of the live version with one record changed behind
        the consumer's back, under a manifest that claims the old digest."""
        live = self.shared.live_manifest(WORDS)
        assert live is not None
        copy = self.tmp / f"tampered-{live.version}"
        copy.mkdir()
        copy_version(self.shared.version_path(WORDS, live.version), live, copy)
        with open_collection(copy, WORDS, space=None, create=False) as opened:
            assert opened.existing([record_id]) == {record_id}
            opened.update_metadatas([record_id], changes)
        grant = self.lease.acquire(WORDS, "intruder", timedelta(seconds=60))
        assert grant is not None
        manifest = self.shared.publish(
            WORDS,
            copy,
            live,
            applied_seq=live.applied_seq,
            first_seq=None,
            last_seq=None,
            digest=live.digest,
            record_count=live.record_count,
            fencing_token=grant.token,
            writer="intruder",
        )
        self.shared.promote(
            WORDS, manifest, expected_parent=live.version, fencing_token=grant.token
        )
        self.lease.release(grant)
        return manifest

    def versions_by_seq(self, collection: str = WORDS) -> dict[int, Manifest]:
        """The consumer's published versions by ``applied_seq``."""
        manifests = [
            self.shared.manifest(collection, version)
            for version in self.shared.versions(collection)
        ]
        return {manifest.applied_seq: manifest for manifest in manifests}


def consumer_config(**changes: Any) -> ConsumerConfig:
    """Small group commits and every version kept, so that the consumer
    leaves a version behind at many seqs."""
    base = ConsumerConfig(
        group_commit_max_events=3,
        group_commit_max_seconds=0,
        retry_wait_seconds=0,
        apply_attempts=2,
        versions_grace_seconds=0,
        versions_keep=1000,
        hnsw_space="cosine",
    )
    return replace(base, **changes)


def make_rig(tmp: Path, start: datetime = T0) -> Rig:
    """A rig over ``tmp`` (which may hold a copied rig's files)."""
    clock = ManualClock(start)
    (tmp / "build").mkdir(parents=True, exist_ok=True)
    return Rig(
        tmp=tmp,
        clock=clock,
        journal=SQLiteJournal(tmp / "journal.sqlite3", clock=clock),
        objects=LocalObjectStore(tmp / "objects"),
        # Version ids sort by this clock: start it after any copied version.
        shared=SharedStore(tmp / "chroma", clock=TickingClock(start)),
        lease=LocalLease(tmp / "leases", clock=clock),
        status=SQLiteStatusStore(tmp / "status.sqlite3"),
        config=consumer_config(),
    )


def close_rig(rig: Rig) -> None:
    for consumer in rig.consumers:
        consumer.close()
    rig.journal.close()
    rig.status.close()


def copy_rig(template: tuple[Path, datetime], dest: Path) -> Rig:
    """A rig over a copy of a closed rig's files, its clock a minute on."""
    path, now = template
    shutil.copytree(path, dest, symlinks=True)
    return make_rig(dest, now + timedelta(minutes=1))


def append_history(rig: Rig) -> list[Envelope]:
    """Seventeen events of every kind, including bookkeeping ones and a
    delta that re-embeds records which already carry labels."""
    history = [
        rig.delta(word_records(1)),
        rig.delta(word_records(2, lines=1, words=4)),
        rig.append(
            MetadataUpdate(
                image_id=IMAGE,
                receipt_id=1,
                changes={"merchant_name": "Cafe Nero", "phone": "0123"},
            )
        ),
        rig.append(label(1, 1, 2, valid_labels=["GRAND_TOTAL"], status="VALID")),
        rig.delta(word_records(3, lines=2, words=2)),
        rig.append(label(2, 1, 3, invalid_labels=["DATE"], proposed_by="agent")),
        rig.append(SnapshotRequest(reason="test")),
        rig.append(RecordsDelete(image_id=IMAGE, receipt_id=2, line_id=1, word_id=4)),
        rig.delta(word_records(1, lines=1, words=3, seed=2)),
        rig.append(
            SnapshotRecorded(
                version="v-test", applied_seq=7, location="nowhere", digest="x"
            )
        ),
        rig.append(
            MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"phone": None})
        ),
        rig.append(label(9, 1, 1, valid_labels=["TAX"])),  # no such word
        rig.append(RecordsDelete(image_id=IMAGE, receipt_id=3)),
        rig.append(EventParked(parked_seq=12, error="test only", attempts=1)),
        rig.delta(word_records(4, lines=1, words=2, seed=1)),
        rig.append(label(1, 2, 1, valid_labels=["TAX", "TOTAL"], status="VALID")),
        rig.append(
            MetadataUpdate(image_id=IMAGE, receipt_id=4, changes={"category": "cafe"})
        ),
    ]
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    return history


# -- faults ------------------------------------------------------------------


class FailingObjects(LocalObjectStore):
    """A local object store whose reads of one key fail, as if the delta had
    become unreadable."""

    def __init__(self, root: Path, fail_key: str) -> None:
        super().__init__(root)
        self.fail_key = fail_key
        self.failed_reads = 0

    def get_file(self, key: str, dest: Path) -> None:
        if key == self.fail_key:
            self.failed_reads += 1
            raise OSError(f"injected read failure of {key}")
        super().get_file(key, dest)


class InterruptingProgress:
    """Raises KeyboardInterrupt (an operator's Ctrl-C) after some batches."""

    def __init__(self, after_batches: int) -> None:
        self.after_batches = after_batches
        self.batches = 0
        self.stopped = False

    def start(self, collection: str, events: int, records: int) -> None:
        pass

    def advance(self, events: int, records: int) -> None:
        self.batches += 1
        if self.batches >= self.after_batches:
            raise KeyboardInterrupt

    def stop(self) -> None:
        self.stopped = True
