"""The journal on one local SQLite file (the embedded default backend).

Several processes may append to the same file at once. Each opens its own
connection; ``BEGIN IMMEDIATE`` takes SQLite's single write lock before the
head is read, so two writers can never both see head ``N`` and both write
``N + 1``: the sequence stays gapless without any retry on conflict. Waiting
for the lock is left to SQLite's busy handler; the few places where SQLite
reports ``SQLITE_BUSY`` without waiting (WAL set-up, recovery) are retried
here until the busy timeout runs out.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import structlog

from journal.base import (
    DEFAULT_MAX_EVENT_BYTES,
    AppendResult,
    Clock,
    Journal,
    Publisher,
    decode_stored,
    utc_now,
)
from journal.errors import JournalUnavailable
from journal.events import Envelope, NewEvent

log = structlog.get_logger(__name__)

T = TypeVar("T")

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS events (
        collection      TEXT    NOT NULL,
        seq             INTEGER NOT NULL,
        event_id        TEXT    NOT NULL,
        idempotency_key TEXT,
        type            TEXT    NOT NULL,
        recorded_at     TEXT    NOT NULL,
        envelope        TEXT    NOT NULL,
        PRIMARY KEY (collection, seq)
    ) WITHOUT ROWID
    """,
    """
    CREATE UNIQUE INDEX IF NOT EXISTS events_by_idempotency_key
        ON events (collection, idempotency_key)
        WHERE idempotency_key IS NOT NULL
    """,
    """
    CREATE INDEX IF NOT EXISTS events_by_recorded_at
        ON events (collection, recorded_at)
    """,
    "CREATE INDEX IF NOT EXISTS events_by_event_id ON events (event_id)",
)

_INSERT = (
    "INSERT INTO events (collection, seq, event_id, idempotency_key, type, "
    "recorded_at, envelope) VALUES (?, ?, ?, ?, ?, ?, ?)"
)

#: SQLite result codes that mean "another connection holds the lock".
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

#: Rows fetched per query while reading; a read never holds more in memory.
READ_PAGE_SIZE = 500


def recorded_at_key(moment: datetime) -> str:
    """``moment`` as a fixed-width UTC string that sorts like the time.

    A naive datetime is taken to be UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


class SQLiteJournal(Journal):
    """The journal in one SQLite file, WAL mode, safe across processes.

    One instance holds one connection, guarded by a lock so that threads
    may share the instance.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Clock = utc_now,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        publisher: Publisher | None = None,
        busy_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(
            clock=clock, max_event_bytes=max_event_bytes, publisher=publisher
        )
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._conn = self._connect()
        self._retry_busy("open", self._set_up)

    # -- the Journal contract -------------------------------------------------

    def _append_batch(
        self, collection: str, events: Sequence[NewEvent]
    ) -> list[AppendResult]:
        results = self._write(lambda: self._store(collection, events))
        fresh = [result.seq for result in results if not result.duplicate]
        log.debug(
            "journal_appended",
            collection=collection,
            seq_from=min(fresh, default=None),
            seq_to=max(fresh, default=None),
            duplicates=len(results) - len(fresh),
        )
        return results

    def read(
        self, collection: str, after: int = 0, upto: int | None = None
    ) -> Iterator[Envelope]:
        """Events with ``after < seq <= upto`` in order, fetched in pages.

        Each page is its own short query, so a long read holds no lock or
        snapshot between pages and never loads the whole range at once.
        """
        last = after
        while True:
            rows = self._page(collection, last, upto)
            for seq, envelope in rows:
                last = seq
                yield decode_stored(collection, seq, envelope)
            if len(rows) < READ_PAGE_SIZE:
                return

    def head(self, collection: str) -> int:
        """The highest ``seq`` of ``collection``, 0 when it has none."""
        return self._scalar(
            "SELECT MAX(seq) FROM events WHERE collection = ?", (collection,)
        )

    def collections(self) -> list[str]:
        """Every collection with at least one event, sorted."""
        sql = "SELECT DISTINCT collection FROM events ORDER BY collection"
        with self._guard("collections"):
            return [row[0] for row in self._conn.execute(sql)]

    def last_seq_at(self, collection: str, at: datetime) -> int:
        """The highest ``seq`` recorded at or before ``at`` (0 when none)."""
        return self._scalar(
            "SELECT MAX(seq) FROM events WHERE collection = ? AND recorded_at <= ?",
            (collection, recorded_at_key(at)),
        )

    def close(self) -> None:
        """Close the connection; the instance is unusable afterwards."""
        with self._lock:
            self._conn.close()

    # -- storing --------------------------------------------------------------

    def _store(self, collection: str, events: Sequence[NewEvent]) -> list[AppendResult]:
        """Inside the write transaction: number, stamp and insert the batch."""
        seq = self._head_in_transaction(collection)
        seen: dict[str, Envelope] = {}
        results: list[AppendResult] = []
        for event in events:
            key = event.idempotency_key
            earlier = self._earlier(collection, key, seen)
            if earlier is not None:
                results.append(AppendResult(envelope=earlier, duplicate=True))
                continue
            seq += 1
            envelope = self._stamp(event, seq)
            self._insert(envelope)
            if key is not None:
                seen[key] = envelope
            results.append(AppendResult(envelope=envelope, duplicate=False))
        return results

    def _earlier(
        self, collection: str, key: str | None, seen: dict[str, Envelope]
    ) -> Envelope | None:
        """The envelope first stored under ``key``, from this batch or before."""
        if key is None:
            return None
        if key in seen:
            return seen[key]
        row = self._conn.execute(
            "SELECT envelope FROM events WHERE collection = ? AND idempotency_key = ?",
            (collection, key),
        ).fetchone()
        return None if row is None else Envelope.from_json(row[0])

    def _head_in_transaction(self, collection: str) -> int:
        row = self._conn.execute(
            "SELECT MAX(seq) FROM events WHERE collection = ?", (collection,)
        ).fetchone()
        return int(row[0] or 0)

    def _insert(self, envelope: Envelope) -> None:
        self._conn.execute(
            _INSERT,
            (
                envelope.collection,
                envelope.seq,
                envelope.event_id,
                envelope.idempotency_key,
                envelope.type,
                recorded_at_key(envelope.recorded_at),
                envelope.to_json(),
            ),
        )

    # -- connection and transactions ------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_s,
                isolation_level=None,  # transactions are explicit below
                check_same_thread=False,  # self._lock serialises use
            )
        except (OSError, sqlite3.Error) as error:
            raise JournalUnavailable(
                f"cannot open the journal at {self.path}: {error}"
            ) from error
        return conn

    def _set_up(self) -> None:
        with self._lock:
            # WAL lets readers run while one writer appends; FULL makes a
            # committed append survive power loss, not only a crash, which
            # the source of truth needs.
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._in_transaction(self._create_schema)

    def _create_schema(self) -> None:
        for statement in _SCHEMA:
            self._conn.execute(statement)

    def _write(self, work: Callable[[], T]) -> T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction, all or nothing."""

        def locked() -> T:
            with self._lock:
                return self._in_transaction(work)

        return self._retry_busy("append", locked)

    def _in_transaction(self, work: Callable[[], T]) -> T:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            result = work()
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        return result

    def _retry_busy(self, operation: str, work: Callable[[], T]) -> T:
        """Run ``work``, retrying while SQLite reports the file busy.

        The busy handler already waits inside most calls; this covers the
        calls where SQLite returns ``SQLITE_BUSY`` at once instead.
        """
        deadline = time.monotonic() + self._busy_timeout_s
        pause = 0.005
        while True:
            try:
                with self._translated(operation):
                    return work()
            except JournalUnavailable as error:
                busy = _is_busy(error.__cause__)
                if not busy or time.monotonic() + pause > deadline:
                    raise
            log.debug("journal_busy_retry", operation=operation, pause=pause)
            time.sleep(pause)
            pause = min(pause * 2, 0.25)

    def _page(
        self, collection: str, after: int, upto: int | None
    ) -> list[tuple[int, str]]:
        sql = "SELECT seq, envelope FROM events WHERE collection = ? AND seq > ?"
        params: tuple[object, ...] = (collection, after)
        if upto is not None:
            sql += " AND seq <= ?"
            params += (upto,)
        sql += " ORDER BY seq LIMIT ?"
        with self._guard("read"):
            rows = self._conn.execute(sql, (*params, READ_PAGE_SIZE)).fetchall()
        return [(int(seq), str(envelope)) for seq, envelope in rows]

    def _scalar(self, sql: str, params: tuple[object, ...]) -> int:
        with self._guard("read"):
            row = self._conn.execute(sql, params).fetchone()
        return int(row[0] or 0)

    @contextmanager
    def _guard(self, operation: str) -> Iterator[None]:
        """Hold the connection lock and translate SQLite errors."""
        with self._lock, self._translated(operation):
            yield

    @contextmanager
    def _translated(self, operation: str) -> Iterator[None]:
        """The one place where SQLite errors become journal errors."""
        try:
            yield
        except sqlite3.Error as error:
            raise JournalUnavailable(
                f"journal {operation} failed on {self.path}: {error}"
            ) from error


def _is_busy(error: BaseException | None) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code in _BUSY_CODES
