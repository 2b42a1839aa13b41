"""The consumer process of the soak run (see ``soak.py``).

``python -m tests.reliability.soak_consumer ROOT SEED`` loops until it is
killed: per collection it either polls the journal (``catch_up``) or plays
the stream, handing :meth:`Consumer.apply_envelopes` a window of recent
events with duplicates, stale re-deliveries, reordering and drops. Every
delivery appends one JSON line to ``ROOT/deliveries.jsonl`` (flushed), so
the soak driver can count faults even after a SIGKILL.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO

import structlog

from journal.events import Envelope
from journal.local_store import LocalObjectStore
from journal.sqlite import SQLiteJournal
from pipeline.consumer import Consumer
from pipeline.lease_local import LocalLease
from pipeline.snapshots import SnapshotConfig, Snapshotter
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore
from tests.reliability.reliability_rig import config

OWNER = "soak-consumer"
SOAK_CONFIG = config(
    group_commit_max_events=200,
    versions_keep=3,
    versions_grace_seconds=5,
    apply_attempts=3,
)


def faulty(
    window: list[Envelope], rng: random.Random, counts: Counter[str]
) -> list[Envelope]:
    """The window as a stream might deliver it."""
    out: list[Envelope] = []
    for envelope in window:
        roll = rng.random()
        if roll < 0.1:
            counts["dropped"] += 1
            continue
        out.append(envelope)
        if roll > 0.85:
            out.append(envelope)
            counts["duplicated"] += 1
    if len(out) > 1 and rng.random() < 0.5:
        rng.shuffle(out)
        counts["reordered"] += 1
    return out


def build(root: Path) -> tuple[Consumer, SQLiteJournal]:
    journal = SQLiteJournal(root / "journal.sqlite3")
    objects = LocalObjectStore(root / "objects")
    shared = SharedStore(root / "chroma")
    snapshots = Snapshotter(
        objects, journal, shared, config=SnapshotConfig(keep=2, grace_seconds=30)
    )
    consumer = Consumer(
        journal,
        objects,
        shared,
        root / "staging",
        LocalLease(root / "leases"),
        SQLiteStatusStore(root / "status.sqlite3"),
        SOAK_CONFIG,
        owner=OWNER,
        after_promote=snapshots.after_promote,
    )
    return consumer, journal


def deliver(
    consumer: Consumer,
    journal: SQLiteJournal,
    collection: str,
    rng: random.Random,
    log: IO[str],
) -> None:
    counts: Counter[str] = Counter()
    applied = consumer.applied_seq(collection)
    head = journal.head(collection)
    if rng.random() < 0.3 or head <= applied:
        outcomes = consumer.catch_up([collection])
        counts["polls"] += 1
    else:
        start = max(0, applied - rng.randint(0, 5))
        upto = min(head, applied + rng.randint(1, 60))
        window = list(journal.read(collection, after=start, upto=upto))
        counts["stale"] += sum(e.seq <= applied for e in window)
        outcomes = consumer.apply_envelopes(collection, faulty(window, rng, counts))
        counts["deliveries"] += 1
    counts["events applied"] += sum(outcome.events for outcome in outcomes)
    counts["batches promoted"] += len(outcomes)
    log.write(json.dumps({"collection": collection, **counts}) + "\n")
    log.flush()


def main(root: Path, seed: int) -> None:
    rng = random.Random(seed)
    consumer, journal = build(root)
    with (root / "deliveries.jsonl").open("a") as log:
        while True:
            for collection in journal.collections():
                try:
                    deliver(consumer, journal, collection, rng, log)
                except Exception as error:  # logged; the next round retries
                    structlog.get_logger("soak").warning(
                        "soak_delivery_failed", collection=collection, error=repr(error)
                    )
                    log.write(
                        json.dumps({"collection": collection, "errors": 1}) + "\n"
                    )
                    log.flush()
            time.sleep(0.02)


if __name__ == "__main__":
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(30),
    )
    main(Path(sys.argv[1]), int(sys.argv[2]))
