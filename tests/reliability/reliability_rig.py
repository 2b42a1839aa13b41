"""A local rig for the reliability tests: every embedded backend under one
folder, record builders, and the checks every test ends with.

The folder layout is the one ``tests/pipeline/crash_driver.py`` expects::

    ROOT/journal.sqlite3  ROOT/status.sqlite3  ROOT/objects/  ROOT/chroma/
    ROOT/staging/         ROOT/leases/

"A clean rebuild" is always a fresh :class:`~pipeline.consumer.Consumer`
catching up from the same journal and object store into a fresh shared
store: ChromaDB's cosine space rounds stored vectors, so digests are only
compared between collections written by the same code (DESIGN section 6).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from journal.base import Journal
from journal.deltas import DeltaRecords, write_delta
from journal.events import Envelope, NewEvent, Payload
from journal.ids import line_id_of, word_id_of
from journal.local_store import LocalObjectStore
from journal.objectstore import ObjectStore
from journal.sqlite import SQLiteJournal
from pipeline.config import ConsumerConfig
from pipeline.consumer import Consumer
from pipeline.digest import digest_format, digest_of_path
from pipeline.lease import Lease, LeaseGrant
from pipeline.lease_local import LocalLease
from pipeline.manifest import MANIFEST_NAME, Manifest
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore

DIM = 8
IMAGE = "3f2a9c1e-0b7d-4e55-9a21-6c0d8e4f1a2b"

#: Small, fast, no waiting: what most reliability tests run with.
FAST = ConsumerConfig(
    group_commit_max_events=500,
    group_commit_max_seconds=0,
    retry_wait_seconds=0,
    apply_attempts=2,
    versions_keep=3,
    versions_grace_seconds=0,
)


def config(**changes: Any) -> ConsumerConfig:
    """:data:`FAST` with some fields changed."""
    return replace(FAST, **changes)


# -- records -------------------------------------------------------------------


def word_records(
    receipt_id: int,
    *,
    lines: int = 2,
    words: int = 3,
    seed: int = 0,
    image_id: str = IMAGE,
    dim: int = DIM,
) -> DeltaRecords:
    """Word records of one receipt; ``seed`` changes vectors and documents
    (a re-embedding of the same ids)."""
    rng = np.random.default_rng(seed * 7919 + receipt_id)
    ids: list[str] = []
    docs: list[str] = []
    metas: list[dict[str, str | int | float | bool]] = []
    for line in range(1, lines + 1):
        for word in range(1, words + 1):
            ids.append(word_id_of(image_id, receipt_id, line, word))
            docs.append(f"word {receipt_id}.{line}.{word} s{seed}")
            metas.append(
                {
                    "image_id": image_id,
                    "receipt_id": receipt_id,
                    "line_id": line,
                    "word_id": word,
                    "text": f"w{line}{word}",
                }
            )
    embeddings = rng.standard_normal((len(ids), dim)).astype(np.float32)
    return DeltaRecords(ids, embeddings, docs, metas)


def line_records(receipt_id: int, *, lines: int = 3, seed: int = 0) -> DeltaRecords:
    """Line records of one receipt."""
    rng = np.random.default_rng(seed * 7919 + receipt_id + 100_000)
    ids = [line_id_of(IMAGE, receipt_id, line) for line in range(1, lines + 1)]
    docs = [f"line {receipt_id}.{line} s{seed}" for line in range(1, lines + 1)]
    metas: list[dict[str, str | int | float | bool]] = [
        {"image_id": IMAGE, "receipt_id": receipt_id, "line_id": line}
        for line in range(1, lines + 1)
    ]
    embeddings = rng.standard_normal((len(ids), DIM)).astype(np.float32)
    return DeltaRecords(ids, embeddings, docs, metas)


# -- the rig -------------------------------------------------------------------


@dataclass
class World:
    """Journal, object store, shared store, lease and status under ``root``."""

    root: Path
    journal: Journal
    objects: ObjectStore
    shared: SharedStore
    lease: Lease
    status: SQLiteStatusStore
    config: ConsumerConfig = FAST
    consumers: list[Consumer] = field(default_factory=list)

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    def consumer(self, owner: str = "consumer-a", **kwargs: Any) -> Consumer:
        """A consumer on this world (its own staging folder per owner)."""
        consumer = Consumer(
            kwargs.pop("journal", self.journal),
            self.objects,
            self.shared,
            kwargs.pop("staging_root", self.staging / owner),
            kwargs.pop("lease", self.lease),
            self.status,
            kwargs.pop("config", self.config),
            owner=owner,
            sleep=kwargs.pop("sleep", lambda _seconds: None),
            **kwargs,
        )
        self.consumers.append(consumer)
        return consumer

    def append(self, collection: str, payload: Payload, **kwargs: Any) -> Envelope:
        """Append one event."""
        event = NewEvent(collection=collection, payload=payload, **kwargs)
        return self.journal.append(event).envelope

    def delta(self, collection: str, records: DeltaRecords) -> Envelope:
        """Upload ``records`` as a delta and append its ``delta_merge``."""
        build = self.root / "build"
        build.mkdir(exist_ok=True)
        payload = write_delta(self.objects, collection, records, workdir=build)
        return self.append(collection, payload)

    def applied(self, collection: str) -> int:
        manifest = self.shared.live_manifest(collection)
        return manifest.applied_seq if manifest else 0

    def close(self) -> None:
        for consumer in self.consumers:
            consumer.close()
        self.journal.close()
        self.status.close()


def local_world(root: Path, **kwargs: Any) -> World:
    """The embedded backends in the crash driver's layout under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    return World(
        root=root,
        journal=kwargs.pop("journal", None) or SQLiteJournal(root / "journal.sqlite3"),
        objects=kwargs.pop("objects", None) or LocalObjectStore(root / "objects"),
        shared=SharedStore(root / "chroma"),
        lease=kwargs.pop("lease", None) or LocalLease(root / "leases"),
        status=SQLiteStatusStore(root / "status.sqlite3"),
        **kwargs,
    )


_rebuilds = itertools.count()


def rebuild_digest(
    journal: Journal,
    objects: ObjectStore,
    scratch: Path,
    collection: str,
    *,
    consumer_config: ConsumerConfig = FAST,
) -> str | None:
    """The digest a fresh consumer reaches from the journal (None when the
    collection has nothing to promote). It checks the rebuilt version's
    files against its manifest digest too."""
    home = scratch / f"rebuild-{next(_rebuilds)}"
    shared = SharedStore(home / "chroma")
    status = SQLiteStatusStore(home / "status.sqlite3")
    consumer = Consumer(
        journal,
        objects,
        shared,
        home / "staging",
        LocalLease(home / "leases"),
        status,
        consumer_config,
        owner="clean-rebuild",
        sleep=lambda _seconds: None,
    )
    try:
        consumer.catch_up([collection])
        assert not consumer.blocked(), consumer.blocked()
    finally:
        consumer.close()
        status.close()
    manifest = shared.live_manifest(collection)
    if manifest is None:
        return None
    assert_version_complete(shared, collection)
    return manifest.digest


def assert_version_complete(shared: SharedStore, collection: str) -> Manifest:
    """The live version's records hash to its manifest's digest."""
    manifest = shared.live_manifest(collection)
    assert manifest is not None, f"{collection} has no live version"
    path = shared.live_path(collection)
    assert (path / MANIFEST_NAME).is_file()
    recomputed = digest_of_path(path, collection, fmt=digest_format(manifest.digest))
    assert recomputed.hexdigest == manifest.digest, (collection, manifest.version)
    assert recomputed.count == manifest.record_count
    return manifest


def manifest_chain(shared: SharedStore, collection: str) -> list[Manifest]:
    """The live version and its ancestors still on disk, oldest first."""
    chain: list[Manifest] = []
    manifest = shared.live_manifest(collection)
    while manifest is not None:
        chain.append(manifest)
        parent = manifest.parent
        if parent is None or parent not in shared.versions(collection):
            break
        manifest = shared.manifest(collection, parent)
    return chain[::-1]


def assert_applied_once(chain: list[Manifest], head: int) -> None:
    """Each seq up to ``head`` was applied by exactly one version of the
    chain (the chain must reach back to the first version)."""
    ranges = [(m.first_seq, m.last_seq) for m in chain]
    expected = 1
    for manifest in chain:
        assert manifest.first_seq == expected, ranges
        assert manifest.last_seq is not None
        assert manifest.applied_seq == manifest.last_seq, ranges
        expected = manifest.last_seq + 1
    assert expected == head + 1, ranges


def no_leftovers(shared: SharedStore, collection: str) -> list[str]:
    """Names under the collection's versions folder that are not complete
    published versions (crashed publishes, interrupted deletions)."""
    folder = shared.root / ".versions" / collection
    if not folder.is_dir():
        return []
    return sorted(
        path.name
        for path in folder.iterdir()
        if path.name.startswith(".") or not (path / MANIFEST_NAME).is_file()
    )


def journal_dump(journal: Journal, collection: str) -> list[str]:
    """The collection's journal as canonical JSON lines."""
    return [envelope.to_json() for envelope in journal.read(collection)]


def stopped_at(consumer: Consumer, journal: Journal, collection: str) -> int | None:
    """Where ``collection`` stopped: its blocked seq in this consumer, or the
    seq an ``event_parked`` in the journal names (once parking records
    failures there); None when it did not stop."""
    blocked = consumer.blocked().get(collection)
    if blocked is not None:
        return blocked.seq
    for envelope in journal.read(collection):
        if envelope.payload.type == "event_parked":
            return int(getattr(envelope.payload, "parked_seq"))  # noqa: B009
    return None


def files_under(root: Path, *, skip: Iterable[str] = ()) -> set[str]:
    """Every path below ``root`` (relative), minus those under ``skip``."""
    skipped = tuple(skip)
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if not path.relative_to(root).as_posix().startswith(skipped)
    }


class GrantEveryone(Lease):
    """A lease store that grants every request (a new, larger token each
    time): it models a split brain, where the lease cannot keep two writers
    apart and only the store's compare-and-swap can."""

    def __init__(self) -> None:
        self._tokens = itertools.count(1)
        self.grants: list[LeaseGrant] = []

    def acquire(self, collection: str, owner: str, ttl: timedelta) -> LeaseGrant:
        from journal.base import utc_now

        grant = LeaseGrant(collection, owner, next(self._tokens), utc_now() + ttl)
        self.grants.append(grant)
        return grant

    def renew(self, grant: LeaseGrant, ttl: timedelta) -> LeaseGrant:
        return grant

    def release(self, grant: LeaseGrant) -> bool:
        return True

    def current(self, collection: str) -> LeaseGrant | None:
        return None


Check = Callable[[], None]


# -- random workloads ----------------------------------------------------------

LABELS = ("DATE", "GRAND_TOTAL", "MERCHANT_NAME", "TAX")
RECEIPTS = 3
LINES = 3
WORDS = 3


class DeltaPool:
    """Deltas built once and shared by many journals: receipt r with 2 or 3
    lines, two embeddings each, so that deltas overlap in ids."""

    def __init__(self, objects: ObjectStore, workdir: Path, collection: str):
        workdir.mkdir(parents=True, exist_ok=True)
        self.payloads = [
            write_delta(
                objects,
                collection,
                word_records(receipt, lines=lines, words=WORDS, seed=seed),
                workdir=workdir,
            )
            for receipt in range(1, RECEIPTS + 1)
            for lines in (2, LINES)
            for seed in (0, 1)
        ]


def random_payload(rng: Any, pool: DeltaPool) -> Payload:
    """One random producer event over a few receipts (``rng`` is a
    ``random.Random``): deltas, metadata, labels, deletes and the odd
    snapshot request (which changes no records)."""
    from journal.events import (
        LabelUpdate,
        MetadataUpdate,
        RecordsDelete,
        SnapshotRequest,
    )

    roll = rng.random()
    receipt = rng.randint(1, RECEIPTS)
    if roll < 0.3:
        return rng.choice(pool.payloads)  # type: ignore[no-any-return]
    if roll < 0.5:
        keys = rng.sample(["merchant_name", "total", "phone"], rng.randint(1, 3))
        values: dict[str, list[Any]] = {
            "merchant_name": ["Shop A", "Shop B", None],
            "total": [1.5, 20, None],
            "phone": ["555", None],
        }
        changes = {key: rng.choice(values[key]) for key in keys}
        return MetadataUpdate(image_id=IMAGE, receipt_id=receipt, changes=changes)
    if roll < 0.75:
        labels = rng.sample(LABELS, rng.randint(0, 3))
        split = rng.randint(0, len(labels))
        return LabelUpdate(
            image_id=IMAGE,
            receipt_id=receipt,
            line_id=rng.randint(1, LINES),
            word_id=rng.randint(1, WORDS),
            valid_labels=labels[:split],
            invalid_labels=labels[split:],
            status=rng.choice(["NONE", "PENDING", "VALID"]),
        )
    if roll < 0.95:
        level = rng.randint(0, 2)
        return RecordsDelete(
            image_id=IMAGE,
            receipt_id=receipt,
            line_id=rng.randint(1, LINES) if level >= 1 else None,
            word_id=rng.randint(1, WORDS) if level == 2 else None,
        )
    return SnapshotRequest(reason="random")
