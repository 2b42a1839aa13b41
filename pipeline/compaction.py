"""Dropping the free pages of a working copy's ``chroma.sqlite3``.

Every promotion copies, hashes and fsyncs the whole SQLite file, because
every batch rewrites some of its pages (DESIGN section 6), so its free
pages cost on every promotion and again in every snapshot. ChromaDB leaves
them behind when it purges its write-ahead queue: 2,507 of 26,783 pages
(9 %) of a 70k x 384 base built here, and a plain ``VACUUM`` took that file
from 110 to 92 MB.

A full ``VACUUM`` rewrites the whole file (3.9 s at 70k x 384 on a loaded
2-core machine), so it runs once, to switch the file to
``auto_vacuum = INCREMENTAL``; from then on ``PRAGMA incremental_vacuum``
after each batch truncates whatever the batch freed, at a cost proportional
to the pages freed. A version published in that mode keeps it, so working
copies built from it never need the full pass again.

Why this is safe for ChromaDB: its own maintenance command (``chroma utils
vacuum``, ``SqliteDB.vacuum`` in the chromadb package) runs a plain
``VACUUM`` on this very file, and every table whose rowid is referenced
declares an ``INTEGER PRIMARY KEY``, which ``VACUUM`` keeps. Incremental
vacuuming moves pages, never rows. Run it only while no client has the
directory open (the runner does, between ``close()`` and publishing).
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import structlog

from journal.deltas import CHROMA_FILE

log = structlog.get_logger(__name__)

_INCREMENTAL = 2  # PRAGMA auto_vacuum: 0 none, 1 full, 2 incremental
#: Nothing else should hold the working copy's database; waiting long for a
#: lock would only delay a batch whose publish would then fail anyway.
_BUSY_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Compaction:
    """What compacting one SQLite file did."""

    bytes_before: int
    bytes_after: int
    free_pages: int
    converted: bool  # the one full VACUUM that switched on incremental mode


def compact(chroma_dir: Path) -> Compaction | None:
    """Give the free pages of ``chroma_dir``'s SQLite file back to the file
    system; None when there is no such file or nothing to drop.

    A failure leaves the file as it was (SQLite rolls the statement back) and
    is logged, not raised: the batch then publishes a valid, larger file.
    """
    path = chroma_dir / CHROMA_FILE
    if not path.is_file():
        return None
    before = path.stat().st_size
    try:
        with contextlib.closing(
            sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        ) as db:
            free = _pragma(db, "freelist_count")
            if free == 0:
                return None
            converted = _pragma(db, "auto_vacuum") != _INCREMENTAL
            if converted:
                db.execute("PRAGMA auto_vacuum = INCREMENTAL")
                db.execute("VACUUM")
            else:
                # executescript steps the pragma to its end; execute() steps
                # it once, which frees a single page.
                db.executescript("PRAGMA incremental_vacuum;")
    except sqlite3.Error as error:
        log.warning("sqlite_compaction_failed", path=str(path), error=str(error))
        return None
    return Compaction(before, path.stat().st_size, free, converted)


def _pragma(db: sqlite3.Connection, name: str) -> int:
    row = db.execute(f"PRAGMA {name}").fetchone()
    return int(row[0])
