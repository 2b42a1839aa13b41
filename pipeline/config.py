"""The consumer's tuning knobs, taken from the settings once at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from journal.deltas import DeltaLimits

if TYPE_CHECKING:
    from chroma_journal.settings import Settings


@dataclass(frozen=True)
class ConsumerConfig:
    """How the consumer batches, retries, leases and keeps versions.

    A batch closes at ``group_commit_max_events`` events or
    ``group_commit_max_records`` delta records; when fewer are waiting, it
    waits until its oldest event is ``group_commit_max_seconds`` old so that
    events arriving together share one publish. A failing event is tried
    ``apply_attempts`` times, waiting ``retry_wait_seconds`` and then twice
    as long each time.
    """

    group_commit_max_events: int = 500
    group_commit_max_records: int = 20_000
    group_commit_max_seconds: float = 0.2
    poll_interval_seconds: float = 0.5
    apply_attempts: int = 3
    lease_ttl_seconds: float = 60.0
    versions_keep: int = 5
    versions_grace_seconds: float = 300.0
    hnsw_space: str = "cosine"
    delta_limits: DeltaLimits = field(default_factory=DeltaLimits)
    retry_wait_seconds: float = 0.1

    def __post_init__(self) -> None:
        if self.group_commit_max_events < 1 or self.group_commit_max_records < 1:
            raise ValueError("group commit limits must be at least 1")
        if self.apply_attempts < 1:
            raise ValueError("apply_attempts must be at least 1")
        if self.lease_ttl_seconds <= 0:
            raise ValueError("lease_ttl_seconds must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsumerConfig:
        """The consumer's part of the settings."""
        return cls(
            group_commit_max_events=settings.group_commit_max_events,
            group_commit_max_records=settings.group_commit_max_records,
            group_commit_max_seconds=settings.group_commit_max_seconds,
            poll_interval_seconds=settings.poll_interval_seconds,
            apply_attempts=settings.apply_attempts,
            lease_ttl_seconds=settings.lease_ttl_seconds,
            versions_keep=settings.versions_keep,
            versions_grace_seconds=settings.versions_grace_seconds,
            hnsw_space=settings.hnsw_space,
            delta_limits=DeltaLimits(
                max_bytes=settings.max_delta_bytes,
                max_members=settings.max_delta_members,
            ),
        )
