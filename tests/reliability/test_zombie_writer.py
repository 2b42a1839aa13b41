"""A consumer frozen (SIGSTOP) in the middle of a batch past its lease
expiry must not promote over the successor that took over meanwhile.

::

    zombie     acquire(t=2) ── apply ── [SIGSTOP ..................] SIGCONT ── refused
    successor                 lease expired ─▶ acquire(t=3) ── promote V2

The zombie is a real process (``zombie_consumer.py``) that stops itself at
a crash point; the successor runs here with a clock two lease lifetimes
ahead, so no test waits for the lease to run out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from journal.base import utc_now
from journal.events import LabelUpdate, MetadataUpdate
from pipeline.lease_local import LocalLease
from tests.reliability.reliability_rig import (
    IMAGE,
    World,
    assert_version_complete,
    journal_dump,
    rebuild_digest,
    word_records,
)
from tests.reliability.zombie_consumer import ZOMBIE_CONFIG

REPO = Path(__file__).resolve().parents[2]
COLLECTION = "words"
WAIT_S = 120.0


def process_state(pid: int) -> str:
    """The one-letter state of a process ("T" when stopped)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def wait_until_stopped(zombie: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while process_state(zombie.pid) != "T":
        if zombie.poll() is not None:
            raise AssertionError(f"the zombie exited early: {zombie.stderr}")
        if time.monotonic() > deadline:
            raise AssertionError("the zombie never reached its freeze point")
        time.sleep(0.05)


def start_zombie(world: World, point: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.reliability.zombie_consumer",
            str(world.root),
            str(world.root / "staging-zombie"),
            "zombie",
            point,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def fill(world: World) -> None:
    """A first batch promoted by an earlier writer, then the batch the zombie
    and its successor both take."""
    world.delta(COLLECTION, word_records(1))
    world.delta(COLLECTION, word_records(2))
    seed = world.consumer("first", config=ZOMBIE_CONFIG)
    seed.catch_up()
    seed.close()
    world.append(
        COLLECTION,
        LabelUpdate(
            image_id=IMAGE, receipt_id=1, line_id=1, word_id=2, valid_labels=["DATE"]
        ),
    )
    world.append(
        COLLECTION,
        MetadataUpdate(image_id=IMAGE, receipt_id=2, changes={"merchant_name": "Z"}),
    )
    world.delta(COLLECTION, word_records(3))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "successor_keeps_lease", "refusal"),
    [
        # Frozen after applying, before renewing the lease: the renewal
        # finds the successor's lease and the zombie stops.
        ("client_closed", True, "LeaseUnavailable"),
        # Same, but the successor has released its lease: just before
        # publishing the zombie only renews (never re-acquires), so it stops
        # before writing anything.
        ("client_closed", False, "LeaseUnavailable"),
        # Frozen in the middle of publishing, after its last lease check:
        # only the fenced compare-and-swap stands between it and the link.
        ("files_published", True, "PromotionRefused"),
        ("manifest_written", False, "PromotionRefused"),
    ],
)
def test_a_frozen_writer_cannot_promote_over_its_successor(
    world: World, point: str, successor_keeps_lease: bool, refusal: str
) -> None:
    fill(world)
    zombie = start_zombie(world, point)
    try:
        wait_until_stopped(zombie)
        before_takeover = world.shared.live_version(COLLECTION)

        ahead = timedelta(seconds=2 * ZOMBIE_CONFIG.lease_ttl_seconds)
        later_lease = LocalLease(world.root / "leases", clock=lambda: utc_now() + ahead)
        successor = world.consumer("successor", lease=later_lease, config=ZOMBIE_CONFIG)
        successor.catch_up()
        if not successor_keeps_lease:
            successor.close()

        live = world.shared.live_manifest(COLLECTION)
        versions = world.shared.versions(COLLECTION)
        journal = journal_dump(world.journal, COLLECTION)
        assert live is not None and live.version != before_takeover
        assert live.applied_seq == world.journal.head(COLLECTION)

        os.kill(zombie.pid, signal.SIGCONT)
        stdout, _ = zombie.communicate(timeout=WAIT_S)
    finally:
        if zombie.poll() is None:
            zombie.kill()
            zombie.wait()

    outcome = json.loads(stdout.splitlines()[-1])
    assert outcome["error"] == refusal, outcome
    assert world.shared.live_manifest(COLLECTION) == live
    assert world.shared.versions(COLLECTION) == versions
    assert journal_dump(world.journal, COLLECTION) == journal
    assert not list((world.shared.root / ".versions" / COLLECTION).glob(".*"))
    assert_version_complete(world.shared, COLLECTION)
    expected = rebuild_digest(world.journal, world.objects, world.root, COLLECTION)
    assert live.digest == expected
