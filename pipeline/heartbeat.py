"""Keeping a collection lease alive while a batch runs.

A batch can outlast the lease's TTL: the first batch after a start copies the
live version, hashes every record and converts the SQLite file to
incremental vacuuming (at 200k x 384 that took longer than the default 60 s
here). Renewing only just before publishing would then find the lease
expired, throw the batch away, and do the same again on every retry. So
while a batch runs, a thread renews the grant every third of its TTL. It
only ever renews: once a renewal is refused the lease is someone else's, and
the fence before publishing fails as it should. Nor does it renew for ever:
after ``max_seconds`` (ten TTLs by default) it stops, so that a batch hung
on a stuck mount or a deadlock lets the lease expire and a successor take
over, as it would without a heartbeat.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from types import TracebackType
from typing import Self

import structlog

from pipeline.lease import Lease, LeaseGrant

log = structlog.get_logger(__name__)


class LeaseHeartbeat:
    """Renews ``grant`` every ``interval`` seconds (default: a third of
    ``ttl``) inside a ``with`` block."""

    def __init__(
        self,
        lease: Lease,
        grant: LeaseGrant,
        ttl: timedelta,
        *,
        interval: float | None = None,
        max_seconds: float | None = None,
    ) -> None:
        self._lease = lease
        self._grant = grant
        self._ttl = ttl
        self._interval = ttl.total_seconds() / 3 if interval is None else interval
        self._max_seconds = (
            ttl.total_seconds() * 10 if max_seconds is None else max_seconds
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{grant.collection}", daemon=True
        )
        self.renewals = 0
        self.lost = False
        self.gave_up = False

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        deadline = time.monotonic() + self._max_seconds
        while not self._stop.wait(self._interval):
            if time.monotonic() >= deadline:
                self.gave_up = True
                log.warning(
                    "lease_heartbeat_stopped",
                    collection=self._grant.collection,
                    after_seconds=self._max_seconds,
                )
                return
            try:
                renewed = self._lease.renew(self._grant, self._ttl)
            except Exception:
                # A transient store error: the next beat tries again, and the
                # fence before publishing decides.
                log.warning(
                    "lease_renewal_failed",
                    collection=self._grant.collection,
                    exc_info=True,
                )
                continue
            if renewed is None:
                self.lost = True
                log.warning(
                    "lease_lost",
                    collection=self._grant.collection,
                    owner=self._grant.owner,
                    token=self._grant.token,
                )
                return
            self.renewals += 1
