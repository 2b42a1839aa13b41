"""The status mirror in a local SQLite file (the embedded default backend)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.status import CollectionStatus, StatusStore

_SELECT = (
    "SELECT collection, applied_seq, live_version, promoted_at, "
    "last_batch_events, last_batch_seconds, blocked_seq, blocked_error "
    "FROM collection_status"
)
_UPSERT = "INSERT OR REPLACE INTO collection_status VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS collection_status (
    collection TEXT PRIMARY KEY,
    applied_seq INTEGER NOT NULL,
    live_version TEXT,
    promoted_at TEXT,
    last_batch_events INTEGER NOT NULL,
    last_batch_seconds REAL NOT NULL,
    blocked_seq INTEGER,
    blocked_error TEXT
)
"""


class SQLiteStatusStore(StatusStore):
    """One row per collection in ``path`` (WAL mode, safe for a concurrent
    ``status`` reader in another process)."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None
        )
        with self._guard("open"):
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SCHEMA)

    def put(self, status: CollectionStatus) -> None:
        """Replace the collection's row."""
        row = (
            status.collection,
            status.applied_seq,
            status.live_version,
            status.promoted_at.isoformat() if status.promoted_at else None,
            status.last_batch_events,
            status.last_batch_seconds,
            status.blocked_seq,
            status.blocked_error,
        )
        with self._guard("put"):
            self._conn.execute(_UPSERT, row)

    def get(self, collection: str) -> CollectionStatus | None:
        """The collection's status, or None."""
        with self._guard("get"):
            sql = f"{_SELECT} WHERE collection = ?"
            row = self._conn.execute(sql, (collection,)).fetchone()
        return None if row is None else _status_of(row)

    def all(self) -> list[CollectionStatus]:
        """Every row, sorted by collection."""
        with self._guard("all"):
            rows = self._conn.execute(f"{_SELECT} ORDER BY collection").fetchall()
        return [_status_of(row) for row in rows]

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _guard(self, operation: str) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except sqlite3.Error as error:
                raise PipelineError(f"status store {operation}: {error}") from error


def _status_of(row: tuple[Any, ...]) -> CollectionStatus:
    (collection, applied, version, promoted, events, seconds, blocked, error) = row
    return CollectionStatus(
        collection=collection,
        applied_seq=applied,
        live_version=version,
        promoted_at=None if promoted is None else datetime.fromisoformat(promoted),
        last_batch_events=events,
        last_batch_seconds=seconds,
        blocked_seq=blocked,
        blocked_error=error,
    )
