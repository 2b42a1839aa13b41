"""The status mirror contract: per-collection progress for dashboards.

The truth about what a collection holds is the live version's manifest; the
status store only mirrors it (and the consumer's blocked state) so that
``chroma-journal status`` and lag metrics need not open every version.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CollectionStatus:
    """What the consumer last did for one collection."""

    collection: str
    applied_seq: int
    live_version: str | None
    promoted_at: datetime | None = None
    last_batch_events: int = 0
    last_batch_seconds: float = 0.0
    blocked_seq: int | None = None
    blocked_error: str | None = None


class StatusStore(abc.ABC):
    """Keeps the latest :class:`CollectionStatus` per collection."""

    @abc.abstractmethod
    def put(self, status: CollectionStatus) -> None:
        """Replace the collection's status."""

    @abc.abstractmethod
    def get(self, collection: str) -> CollectionStatus | None:
        """The collection's status, or None when never written."""

    @abc.abstractmethod
    def all(self) -> list[CollectionStatus]:
        """Every status, sorted by collection."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default holds none."""
