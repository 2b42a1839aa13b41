"""AWS API calls per journal append, counted against moto (not AWS).

Run: ``.venv/bin/python -m bench.aws_calls [--appends N]``

Every call the DynamoDB and Kinesis clients make is counted with botocore's
``before-call`` event, per scenario. The calls per append are a property of
the code and hold on AWS too; the appends per second are moto's, in this
process, and say nothing about DynamoDB latency (moto also answers each
Query in time proportional to the table, so rates fall as the table grows).
Results are printed and written to ``bench/results/aws_calls.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from moto import mock_aws

from chroma_journal.logs import configure_logging
from journal.aws_clients import make_client
from journal.dynamodb import DynamoDBJournal, create_journal_table
from journal.events import NewEvent, SnapshotRequest
from journal.kinesis import KinesisPublisher

RESULTS = Path(__file__).parent / "results" / "aws_calls.json"
TABLE = "bench-journal"
STREAM = "bench-journal"


@dataclass
class Scenario:
    """One measured way of appending."""

    name: str
    appends: int
    events_per_append: int
    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def calls_per_append(self) -> float:
        return sum(self.calls.values()) / self.appends

    @property
    def appends_per_second(self) -> float:
        return self.appends / self.seconds if self.seconds else 0.0


class CallCounter:
    """Counts API calls by operation name."""

    def __init__(self, *clients: Any) -> None:
        self.counts: Counter[str] = Counter()
        for client in clients:
            client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.counts[model.name] += 1

    def take(self) -> dict[str, int]:
        taken = dict(self.counts)
        self.counts.clear()
        return taken


def event(collection: str, key: str | None = None) -> NewEvent:
    return NewEvent(
        collection=collection,
        payload=SnapshotRequest(reason="bench"),
        idempotency_key=key,
        producer="bench",
    )


def measure(
    counter: CallCounter, scenario: Scenario, append: Callable[[int], None]
) -> Scenario:
    counter.take()
    start = time.perf_counter()
    for index in range(scenario.appends):
        append(index)
    scenario.seconds = time.perf_counter() - start
    scenario.calls = counter.take()
    return scenario


@dataclass
class World:
    """Fresh moto clients with an empty journal table and stream."""

    counter: CallCounter
    journal: DynamoDBJournal
    published: DynamoDBJournal


def fresh_world() -> World:
    dynamodb = make_client("dynamodb", region="us-east-1")
    kinesis = make_client("kinesis", region="us-east-1")
    create_journal_table(dynamodb, TABLE)
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    publisher = KinesisPublisher(kinesis, STREAM)
    return World(
        counter=CallCounter(dynamodb, kinesis),
        journal=DynamoDBJournal(dynamodb, TABLE),
        published=DynamoDBJournal(dynamodb, TABLE, publisher=publisher),
    )


Step = Callable[[World, int], Any]


def keyed(world: World, i: int) -> None:
    world.journal.append(event("lines", f"k{i}"))


def batch_of_10(with_keys: bool) -> Step:
    def step(world: World, i: int) -> None:
        keys = [f"{i}-{j}" if with_keys else None for j in range(10)]
        world.journal.append_batch([event("lines", key) for key in keys])

    return step


def plan(appends: int) -> list[tuple[Scenario, Step | None, Step]]:
    """(scenario, unmeasured preparation per append, measured step)."""
    return [
        (
            Scenario("first append of a new collection", appends, 1),
            None,
            lambda w, i: w.journal.append(event(f"new-{i:05d}")),
        ),
        (
            Scenario("append, no key", appends, 1),
            None,
            lambda w, i: w.journal.append(event("lines")),
        ),
        (Scenario("append with idempotency key", appends, 1), None, keyed),
        (Scenario("append of a key seen before", appends, 1), keyed, keyed),
        (Scenario("batch of 10, no keys", appends // 10, 10), None, batch_of_10(False)),
        (Scenario("batch of 10 with keys", appends // 10, 10), None, batch_of_10(True)),
        (
            Scenario("append, no key, Kinesis publish", appends, 1),
            None,
            lambda w, i: w.published.append(event("lines")),
        ),
    ]


def run(appends: int) -> list[Scenario]:
    """Each scenario in a fresh moto, after one append to ``lines``."""
    results: list[Scenario] = []
    for scenario, prepare, step in plan(appends):
        with mock_aws():
            world = fresh_world()
            world.journal.append(event("lines"))
            for index in range(scenario.appends if prepare else 0):
                prepare(world, index)  # type: ignore[misc]
            results.append(measure(world.counter, scenario, partial(step, world)))
    return results


def report(scenarios: list[Scenario]) -> str:
    lines = [
        "AWS API calls per append (uncontended); rates are moto's, not AWS's",
        "",
        f"{'scenario':36} {'calls/append':>12} {'appends/s':>9} {'events/s':>8}  calls",
    ]
    for s in scenarios:
        calls = ", ".join(
            f"{name} {count / s.appends:g}" for name, count in sorted(s.calls.items())
        )
        rate = s.appends_per_second
        events = rate * s.events_per_append
        lines.append(
            f"{s.name:36} {s.calls_per_append:12.2f} {rate:9.1f} {events:8.1f}  {calls}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=200)
    args = parser.parse_args()
    configure_logging(level="WARNING")
    scenarios = run(args.appends)
    print(report(scenarios))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "backend": "moto (in-process mock_aws), not AWS",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "scenarios": [
                    {
                        **asdict(s),
                        "calls_per_append": s.calls_per_append,
                        "appends_per_second_moto": round(s.appends_per_second, 1),
                    }
                    for s in scenarios
                ],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
