"""Property: however a sequence of events is cut into batches, and however
often the consumer restarts (sometimes with its working copy thrown away),
the collection ends with the digest of applying the events one by one.

Events are small deltas with overlapping ids (drawn from a pool built once),
receipt metadata updates, label updates and deletes of receipts, lines and
words, and snapshot requests (which change no records and take the batch
path that never opens ChromaDB). Hypothesis runs derandomized with a bounded
number of examples, so the test is reproducible and stays under a minute.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from journal.events import (
    LabelUpdate,
    MetadataUpdate,
    Payload,
    RecordsDelete,
    SnapshotRequest,
)
from journal.local_store import LocalObjectStore
from pipeline.consumer import Consumer
from tests.reliability.reliability_rig import (
    IMAGE,
    LABELS,
    LINES,
    RECEIPTS,
    WORDS,
    DeltaPool,
    World,
    config,
    local_world,
    rebuild_digest,
)

COLLECTION = "words"
POOL_SIZE = RECEIPTS * 2 * 2

receipts = st.integers(1, RECEIPTS)
lines = st.integers(1, LINES)
words = st.integers(1, WORDS)


@st.composite
def labels(draw: st.DrawFn) -> Payload:
    chosen = draw(st.lists(st.sampled_from(LABELS), unique=True, max_size=3))
    split = draw(st.integers(0, len(chosen)))
    # Few words, so that one batch often labels the same word twice (only
    # the last label may count).
    return LabelUpdate(
        image_id=IMAGE,
        receipt_id=draw(st.integers(1, 2)),
        line_id=draw(st.integers(1, 2)),
        word_id=draw(st.integers(1, 2)),
        valid_labels=chosen[:split],
        invalid_labels=chosen[split:],
        status=draw(st.sampled_from(["NONE", "PENDING", "VALID"])),
    )


@st.composite
def deletes(draw: st.DrawFn) -> Payload:
    line = draw(st.none() | lines)
    word = draw(st.none() | words) if line is not None else None
    return RecordsDelete(
        image_id=IMAGE, receipt_id=draw(receipts), line_id=line, word_id=word
    )


metadata = st.builds(
    lambda receipt, changes: MetadataUpdate(
        image_id=IMAGE, receipt_id=receipt, changes=changes
    ),
    receipts,
    st.dictionaries(
        st.sampled_from(["merchant_name", "phone", "total"]),
        st.sampled_from(["Shop A", "Shop B", "555", 1.5, 20, True, None]),
        min_size=1,
        max_size=2,
    ),
)

#: A delta is an index into the pool (the pool is built once per module).
event = st.one_of(
    st.integers(0, POOL_SIZE - 1),
    metadata,
    labels(),
    deletes(),
    st.just(SnapshotRequest(reason="property")),
)


@st.composite
def relabels(draw: st.DrawFn) -> list[Any]:
    """A delta of a receipt, then two label states of one of its words in a
    row: consecutive label updates are applied as one run, in which only the
    last state of a word may count."""
    first = draw(labels())
    assert isinstance(first, LabelUpdate)
    delta = (first.receipt_id - 1) * 4 + draw(st.integers(0, 3))  # see DeltaPool
    second = draw(labels()).model_copy(
        update={
            "receipt_id": first.receipt_id,
            "line_id": first.line_id,
            "word_id": first.word_id,
        }
    )
    return [delta, first, second]


#: Events, with pairs of labels of one word more likely than by chance.
events_strategy = st.lists(
    st.one_of(event.map(lambda one: [one]), relabels()), min_size=1, max_size=7
).map(lambda groups: [one for group in groups for one in group])


@dataclass(frozen=True)
class Step:
    """Deliver the next ``take`` events, first restarting the consumer (with
    a new batch size) and maybe throwing its working copy away."""

    take: int
    restart: bool
    discard_copy: bool
    batch_size: int


steps = st.builds(
    Step,
    take=st.integers(1, 5),
    restart=st.booleans(),
    discard_copy=st.booleans(),
    batch_size=st.integers(1, 6),
)


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> LocalObjectStore:
    return LocalObjectStore(tmp_path_factory.mktemp("property-objects"))


@pytest.fixture(scope="module")
def pool(
    objects: LocalObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> DeltaPool:
    built = DeltaPool(objects, tmp_path_factory.mktemp("property-pool"), COLLECTION)
    assert len(built.payloads) == POOL_SIZE
    return built


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("property-runs")


class Run:
    """One example: a journal, and a consumer that restarts as told."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.consumer: Consumer | None = None

    def restart(self, step: Step) -> Consumer:
        if self.consumer is not None:
            self.consumer.close()
        if step.discard_copy:
            shutil.rmtree(self.world.staging / "property" / COLLECTION, True)
        batch = config(group_commit_max_events=step.batch_size, versions_keep=2)
        self.consumer = self.world.consumer("property", config=batch)
        return self.consumer


@contextmanager
def world_in(scratch: Path, objects: LocalObjectStore) -> Iterator[World]:
    home = Path(tempfile.mkdtemp(dir=scratch))
    world = local_world(home, objects=objects)
    try:
        yield world
    finally:
        world.close()
        shutil.rmtree(home, ignore_errors=True)


def payload_of(drawn: Any, pool: DeltaPool) -> Payload:
    if isinstance(drawn, int):
        return pool.payloads[drawn]
    payload: Payload = drawn
    return payload


@pytest.mark.slow
@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=events_strategy, plan=st.lists(steps, max_size=8))
@example(
    # A delta, then two label states of one of its words in one batch.
    events=[
        0,
        LabelUpdate(
            image_id=IMAGE, receipt_id=1, line_id=1, word_id=1, valid_labels=["TAX"]
        ),
        LabelUpdate(
            image_id=IMAGE, receipt_id=1, line_id=1, word_id=1, valid_labels=["DATE"]
        ),
    ],
    plan=[],
)
def test_batches_and_restarts_reach_the_one_by_one_digest(
    events: list[Any],
    plan: list[Step],
    pool: DeltaPool,
    objects: LocalObjectStore,
    scratch: Path,
) -> None:
    with world_in(scratch, objects) as world:
        for drawn in events:
            world.append(COLLECTION, payload_of(drawn, pool))
        envelopes = list(world.journal.read(COLLECTION))

        run = Run(world)
        consumer = run.restart(Step(1, True, False, 3))
        position = 0
        for step in plan:
            if step.restart:
                consumer = run.restart(step)
            chunk = envelopes[position : position + step.take]
            consumer.apply_envelopes(COLLECTION, chunk)
            position += step.take
        consumer.catch_up()  # whatever the plan did not deliver
        batched = world.shared.live_manifest(COLLECTION)

        one_by_one = rebuild_digest(
            world.journal,
            objects,
            world.root,
            COLLECTION,
            consumer_config=config(group_commit_max_events=1),
        )
        assert batched is not None
        assert batched.applied_seq == len(events)
        assert batched.digest == one_by_one
