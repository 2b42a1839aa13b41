"""The lease heartbeat keeps a long batch's lease, and notices losing it."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from pipeline.heartbeat import LeaseHeartbeat
from pipeline.lease_local import LocalLease

TTL = timedelta(seconds=3)


def test_a_lease_outlives_its_ttl_while_the_heartbeat_runs(tmp_path: Path) -> None:
    lease = LocalLease(tmp_path)
    grant = lease.acquire("words", "consumer-a", TTL)
    assert grant is not None

    with LeaseHeartbeat(lease, grant, TTL, interval=0.1) as beat:
        time.sleep(TTL.total_seconds() + 1)
        held = lease.current("words")

    assert held is not None
    assert (held.owner, held.token) == ("consumer-a", grant.token)
    assert beat.renewals > 0 and not beat.lost
    assert lease.acquire("words", "consumer-b", TTL) is None


def test_a_heartbeat_never_takes_back_a_lease_it_lost(tmp_path: Path) -> None:
    lease = LocalLease(tmp_path)
    grant = lease.acquire("words", "consumer-a", TTL)
    assert grant is not None
    assert lease.release(grant)
    successor = lease.acquire("words", "consumer-b", TTL)
    assert successor is not None

    with LeaseHeartbeat(lease, grant, TTL, interval=0.05) as beat:
        deadline = time.monotonic() + 10
        while not beat.lost and time.monotonic() < deadline:
            time.sleep(0.05)

    assert beat.lost and beat.renewals == 0
    assert lease.current("words") == successor


def test_a_heartbeat_stops_renewing_a_batch_that_never_ends(tmp_path: Path) -> None:
    lease = LocalLease(tmp_path)
    ttl = timedelta(seconds=1)
    grant = lease.acquire("words", "consumer-a", ttl)
    assert grant is not None

    with LeaseHeartbeat(lease, grant, ttl, interval=0.05, max_seconds=0.3) as beat:
        deadline = time.monotonic() + 10
        while not beat.gave_up and time.monotonic() < deadline:
            time.sleep(0.05)
        renewals = beat.renewals
        time.sleep(ttl.total_seconds() + 0.5)
        assert beat.renewals == renewals
        successor = lease.acquire("words", "consumer-b", ttl)

    assert beat.gave_up and not beat.lost
    assert successor is not None  # the hung batch's lease expired
