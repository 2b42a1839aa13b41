"""A consumer process for the crash-matrix tests.

``python crash_driver.py ROOT`` catches every collection of the rig under
ROOT up (the layout of ``conftest.rig``). The tests arm a crash point with
``CHROMA_JOURNAL_CRASH_AT`` and start it again without one.
"""

from __future__ import annotations

import sys
from pathlib import Path

from journal.local_store import LocalObjectStore
from journal.sqlite import SQLiteJournal
from pipeline.config import ConsumerConfig
from pipeline.consumer import Consumer
from pipeline.lease_local import LocalLease
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore

CONFIG = ConsumerConfig(
    group_commit_max_events=2,
    group_commit_max_seconds=0,
    retry_wait_seconds=0,
    apply_attempts=1,
    versions_keep=2,
    versions_grace_seconds=0,
)


def main(root: Path) -> None:
    journal = SQLiteJournal(root / "journal.sqlite3")
    status = SQLiteStatusStore(root / "status.sqlite3")
    consumer = Consumer(
        journal,
        LocalObjectStore(root / "objects"),
        SharedStore(root / "chroma"),
        root / "staging",
        LocalLease(root / "leases"),
        status,
        CONFIG,
        owner="crash-driver",
    )
    try:
        consumer.catch_up()
    finally:
        consumer.close()
        journal.close()
        status.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
