"""Duplicated, reordered, stale, dropped and undecodable deliveries, and
publishes that fail after the append: the consumer ends where a clean
rebuild from the journal ends, having applied each seq exactly once.

Three doors in: :meth:`Consumer.apply_envelopes` directly, the KCL record
processor through amazon_kclpy's real message loop (with a failover in the
middle), and the DynamoDB journal whose Kinesis publisher fails (moto).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from journal.base import Journal
from journal.events import Envelope, NewEvent
from journal.kinesis import KinesisPublisher, decode_record
from journal.local_store import LocalObjectStore
from tests.reliability.reliability_rig import (
    DeltaPool,
    World,
    assert_applied_once,
    assert_version_complete,
    config,
    local_world,
    manifest_chain,
    random_payload,
    rebuild_digest,
)

COLLECTION = "words"
KEEP_ALL = config(versions_keep=10_000, versions_grace_seconds=1e9)


@dataclass
class Faults:
    """What a delivery schedule did to the stream."""

    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def faulty_deliveries(
    envelopes: list[Envelope], rng: random.Random, faults: Faults
) -> Iterator[list[Envelope]]:
    """The envelopes cut into deliveries of 1-6, with some dropped, some
    duplicated, stale ones re-sent and each delivery possibly shuffled."""
    start = 0
    while start < len(envelopes):
        size = rng.randint(1, 6)
        chunk: list[Envelope] = []
        for envelope in envelopes[start : start + size]:
            roll = rng.random()
            if roll < 0.15:
                faults.counts["dropped"] += 1
                continue
            chunk.append(envelope)
            if roll > 0.85:
                chunk.append(envelope)
                faults.counts["duplicated"] += 1
        if start and rng.random() < 0.3:
            chunk.append(rng.choice(envelopes[:start]))
            faults.counts["stale"] += 1
        if len(chunk) > 1 and rng.random() < 0.5:
            rng.shuffle(chunk)
            faults.counts["reordered"] += 1
        start += size
        yield chunk


def fill_randomly(world: World, pool: DeltaPool, rng: random.Random, n: int) -> None:
    for _ in range(n):
        world.append(COLLECTION, random_payload(rng, pool))


@pytest.fixture(scope="module")
def shared_objects(tmp_path_factory: pytest.TempPathFactory) -> LocalObjectStore:
    return LocalObjectStore(tmp_path_factory.mktemp("delivery-objects"))


@pytest.fixture(scope="module")
def pool(
    shared_objects: LocalObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> DeltaPool:
    return DeltaPool(shared_objects, tmp_path_factory.mktemp("pool"), COLLECTION)


@pytest.fixture
def delivery_world(tmp_path: Path, shared_objects: LocalObjectStore) -> Iterator[World]:
    built = local_world(tmp_path / "world", objects=shared_objects, config=KEEP_ALL)
    yield built
    built.close()


def assert_matches_clean_rebuild(world: World, journal: Journal | None = None) -> None:
    journal = journal or world.journal
    head = journal.head(COLLECTION)
    assert world.applied(COLLECTION) == head
    assert_applied_once(manifest_chain(world.shared, COLLECTION), head)
    live = assert_version_complete(world.shared, COLLECTION)
    expected = rebuild_digest(journal, world.objects, world.root, COLLECTION)
    assert live.digest == expected


# -- Consumer.apply_envelopes --------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_faulty_deliveries_end_at_the_clean_rebuild(
    delivery_world: World, pool: DeltaPool, seed: int
) -> None:
    rng = random.Random(seed)
    fill_randomly(delivery_world, pool, rng, 30)
    envelopes = list(delivery_world.journal.read(COLLECTION))
    consumer = delivery_world.consumer()
    faults = Faults()

    highest = 0
    for delivery in faulty_deliveries(envelopes, rng, faults):
        consumer.apply_envelopes(COLLECTION, delivery)
        highest = max([highest, *(e.seq for e in delivery)])
        # Up to the highest seq delivered: the gaps below it come from the
        # journal, nothing beyond it is guessed.
        assert delivery_world.applied(COLLECTION) == highest
    consumer.catch_up()  # the idle poll finds what the stream never carried

    assert faults.counts["dropped"] and faults.counts["duplicated"]
    assert_matches_clean_rebuild(delivery_world)


def test_a_delivery_of_another_collection_is_refused_without_effect(
    delivery_world: World, pool: DeltaPool
) -> None:
    fill_randomly(delivery_world, pool, random.Random(4), 3)
    other = delivery_world.append("lines", random_payload(random.Random(5), pool))
    consumer = delivery_world.consumer()

    with pytest.raises(ValueError, match="lines"):
        consumer.apply_envelopes(COLLECTION, [other])

    assert delivery_world.shared.live_version(COLLECTION) is None


# -- the KCL record processor --------------------------------------------------


GARBAGE = [
    b"",
    b"\x00\xff not json",
    b'{"seq": 1}',
    b'{"collection": "words", "seq": 2, "payload": {"type": "bogus"}}',
    b"[]",
]


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.slow
@pytest.mark.skipif(find_spec("amazon_kclpy") is None, reason="needs amazon_kclpy")
def test_kcl_processor_under_faulty_delivery_and_failover_matches_rebuild(
    delivery_world: World, pool: DeltaPool
) -> None:
    from pipeline.kcl_processor import ChromaRecordProcessor, ProcessorOptions
    from tests.kcl.kcl_protocol import DaemonSide, Record, record_of

    rng = random.Random(11)
    fill_randomly(delivery_world, pool, rng, 30)
    envelopes = list(delivery_world.journal.read(COLLECTION))
    faults = Faults()
    clock = Monotonic()
    delivered: list[tuple[int, int | None]] = []  # (position, seq)
    daemons: list[DaemonSide] = []

    def start(worker: str, resume_from: str) -> DaemonSide:
        processor = ChromaRecordProcessor(
            lambda owner: delivery_world.consumer(owner),
            ProcessorOptions(worker_id=worker, idle_catch_up_seconds=30),
            journal_collections=delivery_world.journal.collections,
            ownership=lambda _shard: lambda _collection: True,
            clock=clock,
            sleep=lambda _seconds: None,
        )
        daemon = DaemonSide(processor)
        daemons.append(daemon)
        daemon.initialize(resume_from)
        return daemon

    def records_of(chunk: list[Envelope]) -> list[Record]:
        out: list[Record] = []
        for envelope in chunk:
            if rng.random() < 0.15:
                garbage = Record(str(len(delivered) + 1), rng.choice(GARBAGE))
                delivered.append((len(delivered) + 1, None))
                out.append(garbage)
                faults.counts["undecodable"] += 1
            delivered.append((len(delivered) + 1, envelope.seq))
            out.append(record_of(len(delivered), envelope))
        return out

    def check_checkpoints(positions: list[str | None]) -> None:
        applied = delivery_world.applied(COLLECTION)
        for position in positions:
            assert position is not None
            covered = [seq for at, seq in delivered if at <= int(position)]
            assert all(seq is None or seq <= applied for seq in covered)

    try:
        daemon = start("worker-a", "TRIM_HORIZON")
        checkpoint = "TRIM_HORIZON"
        chunks = list(faulty_deliveries(envelopes, rng, faults))
        for index, chunk in enumerate(chunks):
            if index == len(chunks) // 2:
                # Failover: A loses the shard, B resumes from A's checkpoint
                # and the stream repeats what came after it.
                daemon.call({"action": "leaseLost"})
                faults.counts["failover"] += 1
                daemon = start("worker-b", checkpoint)
                skip = 0 if checkpoint == "TRIM_HORIZON" else int(checkpoint)
                again = [seq for at, seq in delivered if at > skip and seq]
                chunk = [envelopes[seq - 1] for seq in again] + chunk
                faults.counts["redelivered"] += len(again)
            exchange = daemon.process(records_of(chunk))
            check_checkpoints(exchange.positions)
            if exchange.positions:
                checkpoint = str(exchange.positions[-1])
        clock.now += 31  # an idle shard polls the journal for what was lost
        daemon.process([])
    finally:
        for one in daemons:
            one.close()

    assert faults.counts["undecodable"] and faults.counts["dropped"]
    assert_matches_clean_rebuild(delivery_world)


# -- DynamoDB journal, Kinesis publishes that fail after the append ------------


class FlakyKinesis:
    """A Kinesis client whose PutRecords fails outright or partially."""

    def __init__(self, client: Any, rng: random.Random, faults: Faults) -> None:
        self._client = client
        self._rng = rng
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_records(self, **kwargs: Any) -> Any:
        from tests.aws.support import client_error

        roll = self._rng.random()
        if roll < 0.25:
            self._faults.counts["publish_call_failed"] += 1
            raise client_error("InternalFailure", "PutRecords")
        if roll < 0.5 and len(kwargs["Records"]) > 1:
            keep = kwargs["Records"][::2]
            self._faults.counts["publish_entries_failed"] += len(
                kwargs["Records"]
            ) - len(keep)
            self._client.put_records(StreamName=kwargs["StreamName"], Records=keep)
            return {
                "FailedRecordCount": len(kwargs["Records"]) - len(keep),
                "Records": [
                    {"SequenceNumber": "1", "ShardId": "shardId-000000000000"}
                    if index % 2 == 0
                    else {"ErrorCode": "ProvisionedThroughputExceededException"}
                    for index in range(len(kwargs["Records"]))
                ],
            }
        return self._client.put_records(**kwargs)


def stream_envelopes(kinesis: Any, stream: str) -> list[Envelope]:
    """Everything on the stream's shards, decoded, in stream order."""
    out: list[Envelope] = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream,
            ShardId=shard["ShardId"],
            ShardIteratorType="TRIM_HORIZON",
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            for record in page["Records"]:
                envelope = decode_record(
                    record["Data"],
                    shard_id=shard["ShardId"],
                    sequence_number=record["SequenceNumber"],
                )
                if envelope is not None:
                    out.append(envelope)
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return out


@pytest.mark.slow
def test_publishes_failing_after_the_append_lose_nothing_dynamodb(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    shared_objects: LocalObjectStore,
    pool: DeltaPool,
) -> None:
    from journal.dynamodb import DynamoDBJournal
    from tests.aws.moto_backends import JOURNAL_TABLE, moto_aws

    aws = moto_aws(request)
    stream = aws.create_stream()
    rng = random.Random(21)
    faults = Faults()
    flaky = FlakyKinesis(aws.kinesis, rng, faults)
    publisher = KinesisPublisher(flaky, stream, max_attempts=2)  # type: ignore[arg-type]
    journal = DynamoDBJournal(aws.dynamodb, JOURNAL_TABLE, publisher=publisher)
    world = local_world(
        tmp_path / "world", journal=journal, objects=shared_objects, config=KEEP_ALL
    )
    try:
        appended = append_in_small_batches(journal, pool, rng, 30)
        # At-least-once: the producer's own retry publishes some twice.
        publisher.publish(rng.sample(appended, 5))
        faults.counts["republished"] += 5

        on_stream = stream_envelopes(aws.kinesis, stream)
        missing = {e.seq for e in appended} - {e.seq for e in on_stream}
        assert publisher.failed_count > 0 and missing
        consumer = world.consumer()
        for start in range(0, len(on_stream), 4):
            consumer.apply_envelopes(COLLECTION, on_stream[start : start + 4])
        consumer.catch_up()

        assert_matches_clean_rebuild(world, journal)
    finally:
        world.close()


def append_in_small_batches(
    journal: Journal, pool: DeltaPool, rng: random.Random, n: int
) -> list[Envelope]:
    appended: list[Envelope] = []
    while len(appended) < n:
        events = [
            NewEvent(collection=COLLECTION, payload=random_payload(rng, pool))
            for _ in range(rng.randint(1, 4))
        ]
        appended += [result.envelope for result in journal.append_batch(events)]
    return appended


Check = Callable[[], None]
