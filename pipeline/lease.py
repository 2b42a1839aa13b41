"""The collection lease contract: one writer per collection, with fencing.

Every writer of a collection (consumer, replay ``--promote``, garbage
collection) holds the collection's lease while it promotes. A grant carries a
fencing token that grows on every acquisition; the token is written into each
manifest the holder promotes, and a promotion is refused when the live
version was written with a larger token. That is what stops a writer that was
paused past its expiry (a "zombie") from promoting over its successor::

    writer A   acquire(t=7) ──── work ──── [paused ..................] promote? refused
    writer B                        expiry ─▶ acquire(t=8) ── promote(t=8)
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LeaseGrant:
    """A held lease: who holds it, until when, with which fencing token."""

    collection: str
    owner: str
    token: int
    expires_at: datetime


class Lease(abc.ABC):
    """Per-collection lease store. All methods are atomic."""

    @abc.abstractmethod
    def acquire(self, collection: str, owner: str, ttl: timedelta) -> LeaseGrant | None:
        """Take the lease if it is free or expired; None when another owner
        holds it. Every successful acquisition gets a larger token."""

    @abc.abstractmethod
    def renew(self, grant: LeaseGrant, ttl: timedelta) -> LeaseGrant | None:
        """Extend the lease only while ``grant`` still holds it (same owner and
        token, not expired); None otherwise, and nothing is changed."""

    @abc.abstractmethod
    def release(self, grant: LeaseGrant) -> bool:
        """Give the lease up; only the holder of ``grant`` can."""

    @abc.abstractmethod
    def current(self, collection: str) -> LeaseGrant | None:
        """The grant in force, or None when free or expired."""

    def holds(self, grant: LeaseGrant) -> bool:
        """True when ``grant`` is still the lease in force."""
        return self.current(grant.collection) == grant
