"""A consumer process that freezes itself in the middle of a batch.

``python -m tests.reliability.zombie_consumer ROOT STAGING OWNER POINT``
catches ROOT's collections up (the rig layout of ``reliability_rig``) with
:data:`ZOMBIE_CONFIG`, and sends itself SIGSTOP the first time the consumer
passes the crash point ``POINT`` (see :mod:`pipeline.faults`): a stand-in
for a garbage-collection pause or a frozen VM. The test lets its lease
expire, runs a successor, then sends SIGCONT. The last stdout line is JSON:
``{"error": <exception class or null>, "message": ...}``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import structlog

from journal.local_store import LocalObjectStore
from journal.sqlite import SQLiteJournal
from pipeline import faults
from pipeline.consumer import Consumer
from pipeline.lease_local import LocalLease
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore
from tests.reliability.reliability_rig import config

#: A short lease; a grace period long enough that the successor's garbage
#: collection leaves the zombie's unfinished publish alone.
ZOMBIE_CONFIG = config(lease_ttl_seconds=2.0, versions_grace_seconds=300)


def freeze_at(point: str) -> None:
    """Make the first pass through ``point`` stop this process."""
    real = faults.point
    armed = [True]

    def maybe_freeze(name: str) -> None:
        if name == point and armed[0]:
            armed[0] = False
            os.kill(os.getpid(), signal.SIGSTOP)
        real(name)

    faults.point = maybe_freeze


def main(root: Path, staging: Path, owner: str) -> dict[str, str | None]:
    journal = SQLiteJournal(root / "journal.sqlite3")
    status = SQLiteStatusStore(root / "status.sqlite3")
    consumer = Consumer(
        journal,
        LocalObjectStore(root / "objects"),
        SharedStore(root / "chroma"),
        staging,
        LocalLease(root / "leases"),
        status,
        ZOMBIE_CONFIG,
        owner=owner,
    )
    try:
        consumer.catch_up()
    except Exception as error:
        return {"error": type(error).__name__, "message": str(error)}
    finally:
        consumer.close()
        journal.close()
        status.close()
    return {"error": None, "message": None}


if __name__ == "__main__":
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    freeze_at(sys.argv[4])
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])))
