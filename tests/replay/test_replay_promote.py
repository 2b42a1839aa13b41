"""Promoting a rebuild as the live version, and the consumer continuing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from replay_rig import WORDS, Rig, label, word_records

from pipeline.errors import LeaseUnavailable, PromotionRefused
from pipeline.lease import LeaseGrant
from pipeline.lease_local import LocalLease
from replay.plan import EMPTY, Target
from replay.promote import Promoter
from replay.rebuild import RebuildResult, run_rebuild


class LosingLease(LocalLease):
    """A lease that is lost while the rebuild publishes."""

    def renew(self, grant: LeaseGrant, ttl: timedelta) -> LeaseGrant | None:
        return None


def promote_rebuild(
    rig: Rig, target: Target, out: Path | None = None, lease: LocalLease | None = None
) -> RebuildResult:
    promoter = Promoter(rig.shared, lease or rig.lease, owner="replay-test")
    return run_rebuild(
        rig.plan(target),
        rig.rebuilder(),
        out,
        scratch_root=rig.tmp / "scratch",
        promoter=promoter,
    )


def test_promoted_rebuild_becomes_live_and_the_consumer_continues(
    caught_up: Rig,
) -> None:
    rig = caught_up
    before = rig.shared.live_manifest(WORDS)

    result = promote_rebuild(rig, Target(), rig.tmp / "out")

    live = rig.shared.live_manifest(WORDS)
    assert before is not None and live is not None
    assert result.promoted == live == result.manifest
    assert live.parent == before.version
    assert live.applied_seq == 17
    assert live.digest == before.digest
    assert live.fencing_token > before.fencing_token
    assert live.writer == "replay-test"

    rig.delta(word_records(5, lines=1, words=2))
    rig.append(label(5, 1, 2, valid_labels=["DATE"]))
    rig.consumer().catch_up()
    after = rig.shared.live_manifest(WORDS)
    assert after is not None and after.applied_seq == 19
    expected = run_rebuild(
        rig.plan(Target(), base=EMPTY),
        rig.rebuilder(),
        rig.tmp / "expected",
        scratch_root=rig.tmp / "scratch",
    )
    assert after.digest == expected.built.digest.hexdigest


def test_promoting_without_out_keeps_no_copy(caught_up: Rig) -> None:
    result = promote_rebuild(caught_up, Target())

    assert result.path is None and result.manifest is None
    assert result.promoted is not None
    assert caught_up.shared.live_version(WORDS) == result.promoted.version
    assert not list((caught_up.tmp / "scratch").iterdir())


def test_rebuild_behind_live_is_promoted_and_the_consumer_reapplies(
    caught_up: Rig,
) -> None:
    rig = caught_up
    head = rig.shared.live_manifest(WORDS)
    assert head is not None

    result = promote_rebuild(rig, Target(to_seq=9))
    assert rig.shared.live_manifest(WORDS) == result.promoted

    rig.consumer().catch_up()
    live = rig.shared.live_manifest(WORDS)
    assert live is not None
    assert (live.applied_seq, live.digest) == (17, head.digest)


def test_promotion_waits_for_the_lease(caught_up: Rig) -> None:
    rig = caught_up
    held = rig.lease.acquire(WORDS, "consumer-a", timedelta(seconds=60))
    assert held is not None
    versions = rig.shared.versions(WORDS)

    with pytest.raises(LeaseUnavailable, match="consumer-a"):
        promote_rebuild(rig, Target())

    assert rig.shared.versions(WORDS) == versions


def test_lease_lost_while_publishing_removes_the_published_version(
    caught_up: Rig,
) -> None:
    rig = caught_up
    live = rig.shared.live_version(WORDS)
    versions = rig.shared.versions(WORDS)
    losing = LosingLease(rig.tmp / "leases", clock=rig.clock)

    with pytest.raises(PromotionRefused, match="lease expired"):
        promote_rebuild(rig, Target(), lease=losing)

    assert rig.shared.live_version(WORDS) == live
    assert rig.shared.versions(WORDS) == versions
