"""The consumer's configuration."""

from __future__ import annotations

import pytest

from chroma_journal.settings import Settings
from journal.deltas import DeltaLimits
from pipeline.config import ConsumerConfig


def test_config_from_settings_takes_every_consumer_setting() -> None:
    settings = Settings(
        group_commit_max_events=7,
        group_commit_max_records=70,
        group_commit_max_seconds=0.7,
        poll_interval_seconds=0.07,
        apply_attempts=4,
        lease_ttl_seconds=17,
        versions_keep=2,
        versions_grace_seconds=9,
        hnsw_space="l2",
        max_delta_bytes=1234,
        max_delta_members=56,
    )

    config = ConsumerConfig.from_settings(settings)

    assert config == ConsumerConfig(
        group_commit_max_events=7,
        group_commit_max_records=70,
        group_commit_max_seconds=0.7,
        poll_interval_seconds=0.07,
        apply_attempts=4,
        lease_ttl_seconds=17,
        versions_keep=2,
        versions_grace_seconds=9,
        hnsw_space="l2",
        delta_limits=DeltaLimits(max_bytes=1234, max_members=56),
    )


def test_config_refuses_limits_that_would_stall_the_consumer() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConsumerConfig(group_commit_max_events=0)
    with pytest.raises(ValueError, match="apply_attempts"):
        ConsumerConfig(apply_attempts=0)
