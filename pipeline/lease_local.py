"""The collection lease as local files (the embedded default backend).

One JSON file per collection, ``<root>/<collection>.json``, holding
``{owner, token, expires_at}``; every operation is a read-modify-write under
a file lock, so processes on one host (or on a file system with working
``flock``) see atomic operations. The token is kept when the lease is
released, so the next acquisition, by anyone, gets a larger one.

An owner that acquires a lease it already holds gets a new grant with a new
token: a restarted process reusing its owner name then fences out its own
predecessor, whose renewals fail because they carry the old token.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from filelock import FileLock, Timeout

from journal.base import Clock, utc_now
from journal.events import validate_collection_name
from pipeline.errors import PipelineError
from pipeline.lease import Lease, LeaseGrant


@dataclass(frozen=True)
class _Record:
    owner: str | None
    token: int
    expires_at: datetime | None

    def live(self, now: datetime) -> bool:
        return (
            self.owner is not None
            and self.expires_at is not None
            and now < self.expires_at
        )


class LocalLease(Lease):
    """Leases as JSON files under ``root``; see the module docstring."""

    def __init__(
        self, root: Path, *, clock: Clock = utc_now, lock_timeout_s: float = 10.0
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self._clock = clock
        self._lock_timeout_s = lock_timeout_s

    def acquire(self, collection: str, owner: str, ttl: timedelta) -> LeaseGrant | None:
        """Take the lease when it is free, expired or already ``owner``'s."""
        with self._locked(collection):
            now = self._clock()
            record = self._read(collection)
            if record.live(now) and record.owner != owner:
                return None
            grant = LeaseGrant(collection, owner, record.token + 1, now + ttl)
            self._write(collection, _Record(owner, grant.token, grant.expires_at))
            return grant

    def renew(self, grant: LeaseGrant, ttl: timedelta) -> LeaseGrant | None:
        """Extend ``grant`` while it is still the lease in force."""
        with self._locked(grant.collection):
            now = self._clock()
            record = self._read(grant.collection)
            if not (record.live(now) and self._is(record, grant)):
                return None
            renewed = LeaseGrant(grant.collection, grant.owner, grant.token, now + ttl)
            self._write(grant.collection, _Record(grant.owner, grant.token, now + ttl))
            return renewed

    def release(self, grant: LeaseGrant) -> bool:
        """Free the lease if no one took it since ``grant`` (even if expired)."""
        with self._locked(grant.collection):
            record = self._read(grant.collection)
            if not self._is(record, grant):
                return False
            self._write(grant.collection, _Record(None, record.token, None))
            return True

    def current(self, collection: str) -> LeaseGrant | None:
        """The grant in force, or None."""
        with self._locked(collection):
            record = self._read(collection)
        owner, expires_at = record.owner, record.expires_at
        if owner is None or expires_at is None or not record.live(self._clock()):
            return None
        return LeaseGrant(collection, owner, record.token, expires_at)

    # -- storage --------------------------------------------------------------

    @staticmethod
    def _is(record: _Record, grant: LeaseGrant) -> bool:
        return record.owner == grant.owner and record.token == grant.token

    def _path(self, collection: str) -> Path:
        return self.root / f"{validate_collection_name(collection)}.json"

    @contextmanager
    def _locked(self, collection: str) -> Iterator[None]:
        lock = FileLock(f"{self._path(collection)}.lock")
        try:
            lock.acquire(timeout=self._lock_timeout_s)
        except Timeout as error:
            raise PipelineError(
                f"lease file of {collection} stayed locked for {self._lock_timeout_s} s"
            ) from error
        try:
            yield
        finally:
            lock.release()

    def _read(self, collection: str) -> _Record:
        try:
            data = json.loads(self._path(collection).read_text())
        except FileNotFoundError:
            return _Record(None, 0, None)
        except ValueError as error:
            raise PipelineError(
                f"lease file {self._path(collection)} is corrupt: {error}"
            ) from error
        expires = data.get("expires_at")
        return _Record(
            owner=data.get("owner"),
            token=int(data["token"]),
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )

    def _write(self, collection: str, record: _Record) -> None:
        data = {
            "owner": record.owner,
            "token": record.token,
            "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        }
        fd, name = tempfile.mkstemp(dir=self.root, prefix=f".{collection}.")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
            out.flush()
            os.fsync(out.fileno())
        Path(name).replace(self._path(collection))
