"""The collection lease contract, run against every backend.

A backend joins the suite with one entry in :data:`LEASE_FACTORIES`: a
callable taking the test's tmp_path and clock and returning a fresh lease
store (over fresh storage). Time only moves when a test moves the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pipeline_rig import ManualClock

from pipeline.lease import Lease
from pipeline.lease_local import LocalLease
from tests.aws.moto_backends import dynamodb_lease

LeaseFactory = Callable[[Path, ManualClock], Lease]

LEASE_FACTORIES: dict[str, LeaseFactory] = {
    "local": lambda tmp, clock: LocalLease(tmp / "leases", clock=clock),
    "dynamodb": lambda tmp, clock: dynamodb_lease(clock),
}

TTL = timedelta(seconds=30)


@pytest.fixture(params=sorted(LEASE_FACTORIES))
def lease(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Lease:
    return LEASE_FACTORIES[request.param](tmp_path, clock)


def test_acquire_a_free_lease_grants_it_until_the_ttl(
    lease: Lease, clock: ManualClock
) -> None:
    grant = lease.acquire("lines", "a", TTL)

    assert grant is not None
    assert (grant.collection, grant.owner) == ("lines", "a")
    assert grant.expires_at == clock() + TTL
    assert grant.token >= 1
    assert lease.current("lines") == grant
    assert lease.holds(grant)


def test_acquire_a_held_lease_is_refused(lease: Lease) -> None:
    held = lease.acquire("lines", "a", TTL)

    assert lease.acquire("lines", "b", TTL) is None
    assert lease.current("lines") == held


def test_leases_of_different_collections_are_independent(lease: Lease) -> None:
    lines = lease.acquire("lines", "a", TTL)
    words = lease.acquire("words", "b", TTL)

    assert lines is not None and words is not None
    assert lease.holds(lines) and lease.holds(words)


def test_renew_extends_the_lease_and_keeps_the_token(
    lease: Lease, clock: ManualClock
) -> None:
    grant = lease.acquire("lines", "a", TTL)
    assert grant is not None
    clock.advance(20)

    renewed = lease.renew(grant, TTL)

    assert renewed is not None
    assert renewed.token == grant.token
    assert renewed.expires_at == clock() + TTL
    clock.advance(20)  # past the first expiry, within the renewed one
    assert lease.current("lines") == renewed


def test_an_expired_lease_can_be_taken_over_with_a_larger_token(
    lease: Lease, clock: ManualClock
) -> None:
    old = lease.acquire("lines", "a", TTL)
    assert old is not None
    clock.advance(31)

    assert lease.current("lines") is None
    new = lease.acquire("lines", "b", TTL)

    assert new is not None
    assert new.owner == "b"
    assert new.token > old.token


def test_the_former_owner_cannot_renew_or_release_after_a_takeover(
    lease: Lease, clock: ManualClock
) -> None:
    old = lease.acquire("lines", "a", TTL)
    assert old is not None
    clock.advance(31)
    new = lease.acquire("lines", "b", TTL)

    assert lease.renew(old, TTL) is None
    assert lease.release(old) is False
    assert lease.current("lines") == new
    assert not lease.holds(old)


def test_an_expired_lease_cannot_be_renewed(lease: Lease, clock: ManualClock) -> None:
    grant = lease.acquire("lines", "a", TTL)
    assert grant is not None
    clock.advance(31)

    assert lease.renew(grant, TTL) is None
    assert lease.current("lines") is None


def test_release_frees_the_lease_for_another_owner(lease: Lease) -> None:
    grant = lease.acquire("lines", "a", TTL)
    assert grant is not None

    assert lease.release(grant) is True
    assert lease.current("lines") is None
    assert lease.renew(grant, TTL) is None
    assert lease.acquire("lines", "b", TTL) is not None


def test_the_token_grows_on_every_acquisition_even_across_release(
    lease: Lease, clock: ManualClock
) -> None:
    tokens = []
    for owner in ("a", "b", "a", "c"):
        grant = lease.acquire("lines", owner, TTL)
        assert grant is not None
        tokens.append(grant.token)
        lease.release(grant)
    clock.advance(5)
    last = lease.acquire("lines", "d", TTL)
    assert last is not None
    tokens.append(last.token)

    assert tokens == sorted(set(tokens))


def test_release_by_someone_who_never_held_it_changes_nothing(lease: Lease) -> None:
    grant = lease.acquire("lines", "a", TTL)
    assert grant is not None
    forged = type(grant)("lines", "b", grant.token, grant.expires_at)

    assert lease.release(forged) is False
    assert lease.current("lines") == grant


# -- the local backend only ------------------------------------------------------


def test_local_lease_reacquired_by_its_owner_fences_out_the_previous_grant(
    tmp_path: Path, clock: ManualClock
) -> None:
    lease = LocalLease(tmp_path / "leases", clock=clock)
    before_restart = lease.acquire("lines", "host:1", TTL)
    after_restart = lease.acquire("lines", "host:1", TTL)

    assert before_restart is not None and after_restart is not None
    assert after_restart.token > before_restart.token
    assert lease.renew(before_restart, TTL) is None


def test_local_lease_state_survives_a_new_instance(
    tmp_path: Path, clock: ManualClock
) -> None:
    grant = LocalLease(tmp_path / "leases", clock=clock).acquire("lines", "a", TTL)

    again = LocalLease(tmp_path / "leases", clock=clock)
    assert again.current("lines") == grant
    assert again.acquire("lines", "b", TTL) is None
