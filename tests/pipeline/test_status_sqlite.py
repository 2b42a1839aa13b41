"""The SQLite status mirror."""

from __future__ import annotations

from pathlib import Path

from pipeline_rig import T0

from pipeline.status import CollectionStatus
from pipeline.status_sqlite import SQLiteStatusStore


def test_put_replaces_a_collections_status_and_survives_reopening(
    tmp_path: Path,
) -> None:
    store = SQLiteStatusStore(tmp_path / "status.sqlite3")
    store.put(CollectionStatus("words", applied_seq=3, live_version="v3"))
    latest = CollectionStatus(
        "words",
        applied_seq=5,
        live_version="v5",
        promoted_at=T0,
        last_batch_events=2,
        last_batch_seconds=0.25,
        blocked_seq=6,
        blocked_error="DeltaIntegrityError: ...",
    )
    store.put(latest)
    store.close()

    reopened = SQLiteStatusStore(tmp_path / "status.sqlite3")
    assert reopened.get("words") == latest
    assert reopened.get("lines") is None
    reopened.close()


def test_all_lists_every_collection_sorted(tmp_path: Path) -> None:
    store = SQLiteStatusStore(tmp_path / "status.sqlite3")
    for name in ("words", "lines"):
        store.put(CollectionStatus(name, applied_seq=1, live_version=None))

    assert [s.collection for s in store.all()] == ["lines", "words"]
    store.close()
