"""A replay ``--promote`` racing the consumer on the same collection.

Round after round (new events appended in between, so both sides have
something to promote) a consumer and a replay rebuild with a promoter start
together from a barrier. Two kinds of round:

- *leased*: the real :class:`~pipeline.lease_local.LocalLease`; whoever holds
  it first promotes, the other waits (consumer) or gives up with
  :class:`LeaseUnavailable` (replay);
- *split brain*: the lease hands both writers the same grant, so neither
  the lease nor the fencing token can keep them apart, and both
  compare-and-swap the same parent at the same moment; only the store's
  parent check decides, and exactly one must win.

Afterwards the live chain must be one line of complete versions, and a
final catch-up must reach the journal head with a clean rebuild's digest.
"""

from __future__ import annotations

import itertools
import random
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from journal.sqlite import SQLiteJournal
from pipeline.consumer import Consumer
from pipeline.errors import LeaseUnavailable, PromotionRefused
from pipeline.lease import Lease, LeaseGrant
from pipeline.manifest import MANIFEST_NAME, Manifest
from pipeline.store import VERSIONS_DIR, SharedStore
from replay.builder import Rebuilder, ReplayConfig
from replay.plan import Target, plan_rebuild
from replay.promote import Promoter
from replay.rebuild import run_rebuild
from replay.sources import ObjectStoreSnapshots, StoreVersions
from tests.reliability.reliability_rig import (
    DeltaPool,
    World,
    assert_version_complete,
    config,
    manifest_chain,
    random_payload,
    rebuild_digest,
)

COLLECTION = "lines"
REPLAY = "replay:race"
ROUNDS = ("leased", "split", "split", "leased", "split", "split")
FIRST_EVENTS = 9
EVENTS_PER_ROUND = 7
BARRIER_TIMEOUT_S = 300  # generous: a loaded 2-core machine lags
RACING = config(
    group_commit_max_events=3, versions_keep=10_000, versions_grace_seconds=1e9
)


@dataclass(frozen=True)
class Attempt:
    """One call of :meth:`SharedStore.promote` and how it ended."""

    writer: str
    expected_parent: str | None
    version: str
    outcome: str  # "won", "refused", or the unexpected error
    raced: bool


class RacingStore(SharedStore):
    """A shared store that records every promotion; when armed, each
    writer's first promotion waits for the other's, so that both
    compare-and-swap the same parent at the same moment."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.attempts: list[Attempt] = []
        self._armed: set[str] = set()
        self._barrier = threading.Barrier(2, timeout=BARRIER_TIMEOUT_S)

    def arm(self, *writers: str) -> None:
        """Make the next promotion of each of ``writers`` meet the other's."""
        self._armed = set(writers)

    def promote(
        self,
        collection: str,
        manifest: Manifest,
        *,
        expected_parent: str | None,
        fencing_token: int,
    ) -> None:
        raced = manifest.writer in self._armed
        if raced:
            self._armed.discard(manifest.writer)
            self._barrier.wait()
        outcome = "won"
        try:
            super().promote(
                collection,
                manifest,
                expected_parent=expected_parent,
                fencing_token=fencing_token,
            )
        except PromotionRefused:
            outcome = "refused"
            raise
        except Exception as error:
            outcome = repr(error)
            raise
        finally:
            self.attempts.append(
                Attempt(
                    manifest.writer, expected_parent, manifest.version, outcome, raced
                )
            )


class SameGrantLease(Lease):
    """A split brain: one grant, taken from the real lease (so tokens keep
    growing across rounds), handed to every writer that asks."""

    def __init__(self, inner: Lease, collection: str) -> None:
        taken = inner.acquire(collection, "split-brain", timedelta(minutes=10))
        assert taken is not None
        inner.release(taken)
        self._token = taken.token

    def acquire(self, collection: str, owner: str, ttl: timedelta) -> LeaseGrant:
        from journal.base import utc_now

        return LeaseGrant(collection, owner, self._token, utc_now() + ttl)

    def renew(self, grant: LeaseGrant, ttl: timedelta) -> LeaseGrant:
        return grant

    def release(self, grant: LeaseGrant) -> bool:
        return True

    def current(self, collection: str) -> LeaseGrant | None:
        return None


@dataclass
class Tally:
    """How each side's attempts ended, over all rounds."""

    consumer: list[str] = field(default_factory=list)
    replay: list[str] = field(default_factory=list)


def drive_consumer(consumer: Consumer, tally: Tally) -> None:
    """Catch up, retrying after a lost swap or a busy lease."""
    while True:
        try:
            consumer.catch_up([COLLECTION])
        except (PromotionRefused, LeaseUnavailable) as error:
            tally.consumer.append(type(error).__name__)
            continue
        tally.consumer.append("caught_up")
        return


def drive_replay(
    world: World, store: RacingStore, lease: Lease, scratch: Path, tally: Tally
) -> None:
    """``replay rebuild --promote`` as the CLI wires it, on its own journal
    connection (the CLI is another process)."""
    with SQLiteJournal(world.root / "journal.sqlite3") as journal:
        plan = plan_rebuild(
            journal,
            COLLECTION,
            Target(),
            [ObjectStoreSnapshots(world.objects), StoreVersions(store)],
            objects=world.objects,
        )
        rebuilder = Rebuilder(
            journal,
            world.objects,
            ReplayConfig.from_consumer(RACING),
            sleep=lambda _seconds: None,
        )
        promoter = Promoter(store, lease, owner=REPLAY, lease_ttl_seconds=60)
        try:
            result = run_rebuild(
                plan, rebuilder, None, scratch_root=scratch, promoter=promoter
            )
        except (PromotionRefused, LeaseUnavailable) as error:
            tally.replay.append(type(error).__name__)
            return
    assert result.promoted is not None
    assert result.promoted.applied_seq == plan.target_seq
    tally.replay.append("promoted")


def race_round(
    world: World, store: RacingStore, kind: str, index: int, scratch: Path
) -> Tally:
    """Start a consumer and a replay together; both must finish cleanly."""
    owner = f"consumer-{index}"
    lease = world.lease if kind == "leased" else SameGrantLease(world.lease, COLLECTION)
    consumer = world.consumer(owner, lease=lease, config=RACING)
    consumer.shared = store
    consumer._runner._shared = store
    if kind == "split":
        store.arm(owner, REPLAY)
    start = threading.Barrier(2, timeout=BARRIER_TIMEOUT_S)
    tally = Tally()
    errors: list[BaseException] = []

    def run(target: Callable[[], None]) -> None:
        try:
            start.wait()
            target()
        except BaseException as error:  # reported below, on the test's thread
            traceback.print_exc()  # which side raised, in the captured output
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=(lambda: drive_consumer(consumer, tally),)),
        threading.Thread(
            target=run,
            args=(lambda: drive_replay(world, store, lease, scratch, tally),),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * BARRIER_TIMEOUT_S)
    consumer.close()
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    return tally


def assert_no_half_state(shared: SharedStore) -> None:
    """Every published version is complete and the link names one."""
    folder = shared.root / VERSIONS_DIR / COLLECTION
    for path in folder.iterdir():
        if not path.name.startswith(".tmp-"):
            assert (path / MANIFEST_NAME).is_file(), path.name
    assert_version_complete(shared, COLLECTION)


def assert_one_line_of_versions(shared: SharedStore, attempts: list[Attempt]) -> None:
    """The live chain reaches the first version, holds every version that
    won a swap (and no other), and its applied seq never goes back."""
    chain = manifest_chain(shared, COLLECTION)
    assert chain[0].parent is None
    won = [a for a in attempts if a.outcome == "won"]
    assert len(chain) == len(won)
    assert {m.version for m in chain} == {a.version for a in won}
    assert set(shared.versions(COLLECTION)) == {a.version for a in won}
    for parent, child in itertools.pairwise(chain):
        assert child.parent == parent.version
        assert child.applied_seq >= parent.applied_seq, (parent, child)


def test_replay_promote_racing_the_consumer_one_wins_each_swap_nothing_lost(
    world: World, tmp_path: Path
) -> None:
    pool = DeltaPool(world.objects, tmp_path / "pool", COLLECTION)
    rng = random.Random(8)
    for _ in range(FIRST_EVENTS):
        world.append(COLLECTION, random_payload(rng, pool))
    store = RacingStore(world.shared.root)
    tallies: list[Tally] = []

    for index, kind in enumerate(ROUNDS):
        if index:
            for _ in range(EVENTS_PER_ROUND):
                world.append(COLLECTION, random_payload(rng, pool))
        tallies.append(race_round(world, store, kind, index, tmp_path / "replay"))
        assert_no_half_state(world.shared)
        assert world.applied(COLLECTION) == world.journal.head(COLLECTION)

    attempts = store.attempts
    assert {a.outcome for a in attempts} <= {"won", "refused"}, attempts
    # One winner per parent: no two versions were ever promoted over the same.
    winners = [a.expected_parent for a in attempts if a.outcome == "won"]
    assert len(winners) == len(set(winners))
    splits = [i for i, kind in enumerate(ROUNDS) if kind == "split"]
    raced = [a for a in attempts if a.raced]
    assert len(raced) == 2 * len(splits)
    for first, second in zip(raced[::2], raced[1::2], strict=True):
        assert first.expected_parent == second.expected_parent
        assert sorted([first.outcome, second.outcome]) == ["refused", "won"]
    for index in splits:
        assert tallies[index].replay[0] in {"promoted", "PromotionRefused"}
    outcomes = {o for t in tallies for o in t.consumer + t.replay}
    assert outcomes <= {
        "caught_up",
        "promoted",
        "PromotionRefused",
        "LeaseUnavailable",
    }
    assert_one_line_of_versions(world.shared, attempts)

    final = world.consumer("final", config=RACING)
    final.catch_up([COLLECTION])
    head = world.journal.head(COLLECTION)
    assert world.applied(COLLECTION) == head
    live = assert_version_complete(world.shared, COLLECTION)
    expected = rebuild_digest(world.journal, world.objects, tmp_path, COLLECTION)
    assert live.digest == expected
