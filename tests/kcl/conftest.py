"""Fixtures of the KCL tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kcl_rig import LocalRig, ManualClock

from journal.local_store import LocalObjectStore
from journal.sqlite import SQLiteJournal
from pipeline.lease_local import LocalLease
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[LocalRig]:
    clock = ManualClock()
    (tmp_path / "build").mkdir()
    rig = LocalRig(
        tmp=tmp_path,
        clock=clock,
        journal=SQLiteJournal(tmp_path / "journal.sqlite3", clock=clock),
        objects=LocalObjectStore(tmp_path / "objects"),
        shared=SharedStore(tmp_path / "chroma"),
        lease=LocalLease(tmp_path / "leases", clock=clock),
        status=SQLiteStatusStore(tmp_path / "status.sqlite3"),
    )
    yield rig
    for consumer in rig.consumers:
        consumer.close()
    rig.journal.close()
    rig.status.close()
