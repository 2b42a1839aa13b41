"""The soak run: random appends, random SIGKILLs of a consumer process and
random duplicate deliveries for N minutes, then a check against a clean
rebuild. Not part of the test command; see ``tests/reliability/README.md``.

    python -m tests.reliability.soak --minutes 30 [--seed 1] [--root DIR]

A producer thread appends random events (deltas with overlapping ids,
metadata, labels, deletes, snapshot requests) to two collections, in small
batches, some with idempotency keys that it then appends again (a producer
retry). A consumer process (``soak_consumer.py``) plays the stream with
duplicates, stale re-deliveries, reordering and drops, polls the journal,
and takes snapshots. The driver kills it with SIGKILL at random moments or
at a random crash point (``CHROMA_JOURNAL_CRASH_AT``), and restarts it.

At the end the consumer runs once more without faults, and every collection
must be at its journal head, with a complete live version whose digest
equals a clean rebuild's, no half-written version left, a gapless journal
without a repeated idempotency key, and nothing parked.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from journal.events import NewEvent
from pipeline.faults import ENV_VAR
from tests.reliability.reliability_rig import (
    DeltaPool,
    World,
    assert_version_complete,
    local_world,
    no_leftovers,
    random_payload,
    rebuild_digest,
)
from tests.reliability.soak_consumer import OWNER

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = ("lines", "words")
CRASH_POINTS = (
    "workcopy_ready",
    "applied_delta_merge",
    "applied_metadata_update",
    "applied_label_update",
    "applied_records_delete",
    "client_closed",
    "files_published",
    "manifest_written",
    "link_swapped",
    "status_mirrored",
    "snapshot_file_uploaded",
    "snapshot_pointer_written",
    "gc_done",
)


@dataclass
class Figures:
    """What the soak run did."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, key: str, amount: int = 1) -> None:
        self.counts[key] += amount


class Producer(threading.Thread):
    """Appends random events until stopped."""

    def __init__(self, world: World, pools: dict[str, DeltaPool], seed: int):
        super().__init__(daemon=True)
        self.world = world
        self.pools = pools
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.figures = Figures()

    def run(self) -> None:
        serial = 0
        while not self.stop.is_set():
            collection = self.rng.choice(COLLECTIONS)
            events = []
            for _ in range(self.rng.randint(1, 4)):
                serial += 1
                key = f"p-{serial}" if self.rng.random() < 0.5 else None
                payload = random_payload(self.rng, self.pools[collection])
                events.append(
                    NewEvent(
                        collection=collection, payload=payload, idempotency_key=key
                    )
                )
            self.world.journal.append_batch(events)
            self.figures.add("events appended by the producer", len(events))
            keyed = [e for e in events if e.idempotency_key]
            if keyed and self.rng.random() < 0.3:
                again = self.world.journal.append_batch(keyed)  # a producer retry
                self.figures.add("keyed appends retried", len(keyed))
                self.figures.add(
                    "retried appends that wrote (must be 0)",
                    sum(not r.duplicate for r in again),
                )
            self.stop.wait(self.rng.uniform(0.1, 0.4))


def start_consumer(
    root: Path, rng: random.Random, figures: Figures
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    if rng.random() < 0.4:
        env[ENV_VAR] = f"{rng.choice(CRASH_POINTS)}:{rng.randint(1, 4)}"
        figures.add("crash points armed")
    seed = rng.randrange(1 << 30)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.soak_consumer", str(root), str(seed)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(root / "consumer.stderr").open("ab"),
    )


def torment(root: Path, minutes: float, rng: random.Random, figures: Figures) -> None:
    """Run the consumer, killing it at random, until the time is up."""
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        consumer = start_consumer(root, rng, figures)
        figures.add("consumer starts")
        lifetime = rng.uniform(3.0, 20.0)
        try:
            consumer.wait(timeout=min(lifetime, max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            consumer.send_signal(signal.SIGKILL)
            consumer.wait()
            figures.add("SIGKILLs sent by the driver")
            continue
        if consumer.returncode == -signal.SIGKILL:
            figures.add("SIGKILLs at crash points")
        else:
            figures.add(f"consumer exits with {consumer.returncode}")


def delivery_figures(root: Path, figures: Figures) -> None:
    path = root / "deliveries.jsonl"
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the last line of a killed process may be torn
        for key, value in record.items():
            if key != "collection":
                figures.add(f"stream: {key}", int(value))


def final_check(world: World, figures: Figures) -> list[str]:
    """Catch up without faults, then compare with a clean rebuild."""
    from pipeline.snapshots import Snapshotter

    snapshots = Snapshotter(world.objects, world.journal, world.shared)
    # The killed consumer's owner name: its leases need not expire first.
    consumer = world.consumer(OWNER, after_promote=snapshots.after_promote)
    outcomes = consumer.catch_up()
    consumer.close()
    figures.add(
        "events left for the final clean catch-up", sum(o.events for o in outcomes)
    )
    problems: list[str] = []
    if consumer.blocked():
        problems.append(f"blocked: {consumer.blocked()}")
    for collection in world.journal.collections():
        problems += check_collection(world, collection, figures)
    return problems


def check_collection(world: World, collection: str, figures: Figures) -> list[str]:
    problems: list[str] = []
    events = list(world.journal.read(collection))
    head = world.journal.head(collection)
    figures.add("journal events (incl. bookkeeping)", head)
    if [e.seq for e in events] != list(range(1, head + 1)):
        problems.append(f"{collection}: journal not gapless")
    keys = Counter(e.idempotency_key for e in events if e.idempotency_key)
    if any(count > 1 for count in keys.values()):
        problems.append(f"{collection}: an idempotency key stored twice")
    parked = [e.seq for e in events if e.payload.type == "event_parked"]
    if parked:
        problems.append(f"{collection}: parked events {parked}")
    if world.applied(collection) != head:
        problems.append(f"{collection}: applied {world.applied(collection)} of {head}")
    live = assert_version_complete(world.shared, collection)
    world.shared.gc(collection, keep=3, grace_seconds=0)
    if no_leftovers(world.shared, collection):
        problems.append(
            f"{collection}: leftovers {no_leftovers(world.shared, collection)}"
        )
    expected = rebuild_digest(world.journal, world.objects, world.root, collection)
    if live.digest != expected:
        problems.append(f"{collection}: digest {live.digest} != rebuild {expected}")
    else:
        figures.add("collections equal to a clean rebuild")
    return problems


def soak(minutes: float, seed: int, root: Path) -> tuple[Figures, list[str]]:
    rng = random.Random(seed)
    world = local_world(root)
    pools = {c: DeltaPool(world.objects, root / "pool", c) for c in COLLECTIONS}
    producer = Producer(world, pools, seed)
    figures = Figures()
    started = time.monotonic()
    producer.start()
    try:
        torment(root, minutes, rng, figures)
    finally:
        producer.stop.set()
        producer.join()
    figures.counts.update(producer.figures.counts)
    delivery_figures(root, figures)
    problems = final_check(world, figures)
    if figures.counts["retried appends that wrote (must be 0)"]:
        problems.append("a retried keyed append wrote a second event")
    figures.add("seconds", round(time.monotonic() - started))
    world.close()
    return figures, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--root", type=Path, default=None, help="default: a temp dir")
    args = parser.parse_args(argv)
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
    )
    root = args.root or Path(tempfile.mkdtemp(prefix="chroma-journal-soak-"))
    print(f"soak: {args.minutes} min, seed {args.seed}, under {root}", flush=True)
    figures, problems = soak(args.minutes, args.seed, root)
    for key, value in sorted(figures.counts.items()):
        print(f"  {key:40} {value}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("soak: OK" if not problems else f"soak: {len(problems)} problem(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
