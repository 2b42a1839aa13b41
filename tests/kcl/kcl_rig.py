"""A local rig for the record processor: SQLite journal, local object store,
shared store and lease under one folder, with clocks the tests move."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from journal.events import Envelope, NewEvent
from journal.local_store import LocalObjectStore
from journal.sqlite import SQLiteJournal
from pipeline.config import ConsumerConfig
from pipeline.consumer import Consumer
from pipeline.lease import Lease
from pipeline.lease_local import LocalLease
from pipeline.manifest import Manifest
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore

T0 = datetime(2026, 12, 3, 16, 15, 30, tzinfo=UTC)

CONFIG = ConsumerConfig(
    group_commit_max_seconds=0,
    retry_wait_seconds=0,
    apply_attempts=1,
    lease_ttl_seconds=60,
    versions_keep=1000,
    versions_grace_seconds=1e9,
)


class ManualClock:
    """Wall-clock time that moves only when a test moves it."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Monotonic:
    """``time.monotonic`` that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class LocalRig:
    """Every backend the processor's consumers share, under one folder."""

    tmp: Path
    clock: ManualClock
    journal: SQLiteJournal
    objects: LocalObjectStore
    shared: SharedStore
    lease: LocalLease
    status: SQLiteStatusStore
    consumers: list[Consumer] = field(default_factory=list)

    def consumer(self, owner: str, lease: Lease | None = None) -> Consumer:
        """A consumer with its own staging folder, as in its own process."""
        consumer = Consumer(
            self.journal,
            self.objects,
            self.shared,
            self.tmp / "staging" / owner.replace("/", "_"),
            lease or self.lease,
            self.status,
            CONFIG,
            owner=owner,
            clock=self.clock,
            sleep=lambda _seconds: None,
        )
        self.consumers.append(consumer)
        return consumer

    def append(self, event: NewEvent) -> Envelope:
        self.clock.advance(0.01)
        return self.journal.append(event).envelope

    def applied(self, collection: str) -> int:
        manifest = self.shared.live_manifest(collection)
        return manifest.applied_seq if manifest else 0

    def chain(self, collection: str) -> list[Manifest]:
        """The live version and its ancestors, oldest first."""
        return manifest_chain(self.shared, collection)


def manifest_chain(shared: SharedStore, collection: str) -> list[Manifest]:
    """The live version and its ancestors (by ``parent``), oldest first."""
    chain: list[Manifest] = []
    manifest = shared.live_manifest(collection)
    while manifest is not None:
        chain.append(manifest)
        parent = manifest.parent
        manifest = shared.manifest(collection, parent) if parent else None
    return chain[::-1]


def seq_ranges(chain: list[Manifest]) -> list[tuple[int | None, int | None]]:
    """The ``(first_seq, last_seq)`` each version applied."""
    return [(manifest.first_seq, manifest.last_seq) for manifest in chain]


def assert_contiguous(chain: list[Manifest], head: int) -> None:
    """Each seq from 1 to ``head`` was applied by exactly one version."""
    expected = 1
    for manifest in chain:
        assert manifest.first_seq == expected, seq_ranges(chain)
        assert manifest.last_seq is not None
        assert manifest.applied_seq == manifest.last_seq
        expected = manifest.last_seq + 1
    assert expected == head + 1, seq_ranges(chain)
