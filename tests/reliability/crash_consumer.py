"""A consumer process for the crash-mix tests, with snapshots.

``python -m tests.reliability.crash_consumer ROOT crash`` catches every
collection under ROOT up, like ``tests/pipeline/crash_driver.py`` (same
layout, same settings), but also takes snapshots after promotions, so the
snapshot steps can be crashed too. The tests arm a point with
``CHROMA_JOURNAL_CRASH_AT``. Besides the product's own points this driver
adds ``snapshot_events_appended``, hit right after the journal stored a
batch holding ``snapshot_recorded``.

``... ROOT restart`` runs without a crash point and prints one JSON line:
the state the crash left (checked before anything runs), then the state
after catching up.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from journal.base import AppendResult
from journal.events import NewEvent
from journal.local_store import LocalObjectStore
from journal.sqlite import SQLiteJournal
from pipeline import faults
from pipeline.consumer import Consumer
from pipeline.digest import digest_of_path
from pipeline.lease_local import LocalLease
from pipeline.manifest import MANIFEST_NAME
from pipeline.snapshot_format import read_manifest, read_pointer, snapshot_prefix
from pipeline.snapshots import Snapshotter
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore
from tests.pipeline.crash_driver import CONFIG

COLLECTION = "words"


class CrashableJournal(SQLiteJournal):
    """Offers a crash point right after snapshot events are stored."""

    def append_batch(self, events: Sequence[NewEvent]) -> list[AppendResult]:
        results = super().append_batch(events)
        if any(e.payload.type == "snapshot_recorded" for e in events):
            faults.point("snapshot_events_appended")
        return results


def _consumer(root: Path, journal: SQLiteJournal) -> tuple[Consumer, SharedStore]:
    objects = LocalObjectStore(root / "objects")
    shared = SharedStore(root / "chroma")
    snapshots = Snapshotter(objects, journal, shared)
    consumer = Consumer(
        journal,
        objects,
        shared,
        root / "staging",
        LocalLease(root / "leases"),
        SQLiteStatusStore(root / "status.sqlite3"),
        CONFIG,
        owner="crash-consumer",
        after_promote=snapshots.after_promote,
    )
    return consumer, shared


def _live_state(root: Path, shared: SharedStore) -> dict[str, Any]:
    manifest = shared.live_manifest(COLLECTION)
    if manifest is None:
        return {"version": None}
    path = shared.live_path(COLLECTION)
    recomputed = digest_of_path(path, COLLECTION, scratch_dir=root)
    return {
        "version": manifest.version,
        "applied_seq": manifest.applied_seq,
        "digest": manifest.digest,
        "recomputed": recomputed.hexdigest,
    }


def _store_state(shared: SharedStore) -> dict[str, Any]:
    folder = shared.root / ".versions" / COLLECTION
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    incomplete = [
        name
        for name in names
        if name.startswith(".") or not (folder / name / MANIFEST_NAME).is_file()
    ]
    return {"versions": names, "incomplete": incomplete}


def _snapshot_state(root: Path) -> dict[str, Any]:
    objects = LocalObjectStore(root / "objects")
    current = read_pointer(objects, COLLECTION)
    if current is None:
        return {"pointer": None}
    pointer = current.pointer
    snap = read_manifest(objects, COLLECTION, pointer.version)
    prefix = snapshot_prefix(COLLECTION, pointer.version)
    stored = {info.key[len(prefix) :] for info in objects.list(prefix)}
    return {
        "pointer": pointer.version,
        "pointer_seq": pointer.applied_seq,
        "digest": snap.digest,
        "missing_files": sorted(set(snap.files) - stored),
    }


def crash(root: Path) -> None:
    """Catch up (the armed crash point kills the process on the way)."""
    journal = CrashableJournal(root / "journal.sqlite3")
    consumer, _ = _consumer(root, journal)
    try:
        consumer.catch_up()
    finally:
        consumer.close()
        journal.close()


def restart(root: Path) -> dict[str, Any]:
    """Check what the crash left, catch up, and report."""
    journal = CrashableJournal(root / "journal.sqlite3")
    consumer, shared = _consumer(root, journal)
    report: dict[str, Any] = {"after_crash": _live_state(root, shared)}
    try:
        consumer.catch_up()
        report["blocked"] = {c: str(b) for c, b in consumer.blocked().items()}
    finally:
        consumer.close()
    status = SQLiteStatusStore(root / "status.sqlite3").get(COLLECTION)
    report.update(
        after_restart=_live_state(root, shared),
        store=_store_state(shared),
        head=journal.head(COLLECTION),
        status_applied=status.applied_seq if status else None,
        journal=[e.to_json() for e in journal.read(COLLECTION)],
        snapshot=_snapshot_state(root),
    )
    journal.close()
    return report


if __name__ == "__main__":
    # stdout carries the report; logs go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    where, mode = Path(sys.argv[1]), sys.argv[2]
    if mode == "crash":
        crash(where)
    else:
        print(json.dumps(restart(where)))
