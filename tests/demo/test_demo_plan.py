"""Planning the demo's events, and the records they lead to."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from chroma_journal.demo.cord import read_cord_dir, shipped_samples_dir
from chroma_journal.demo.embedder import HashingEmbedder
from chroma_journal.demo.expected import expected_final_records
from chroma_journal.demo.model import Receipt
from chroma_journal.demo.plan import (
    LABELLED_AT,
    DemoPlan,
    PlannedDelta,
    PlannedEvent,
    plan_demo,
)
from chroma_journal.demo.sroie import read_sroie_dir
from journal.events import LabelUpdate, MetadataUpdate, RecordsDelete
from journal.ids import receipt_prefix


@pytest.fixture(scope="module")
def receipts() -> list[Receipt]:
    return list(read_cord_dir(shipped_samples_dir()))


@pytest.fixture(scope="module")
def plan(receipts: list[Receipt]) -> DemoPlan:
    return plan_demo(receipts, HashingEmbedder())


def _sroie_receipts(root: Path) -> list[Receipt]:
    for name, company in (("X001", "SHOP ONE"), ("X002", "SHOP TWO")):
        (root / "box").mkdir(parents=True, exist_ok=True)
        (root / "entities").mkdir(parents=True, exist_ok=True)
        (root / "box" / f"{name}.txt").write_text(
            "0,0,100,0,100,10,0,10,HELLO WORLD\n0,20,50,20,50,30,0,30,TOTAL 9.00\n"
        )
        entities = {"company": company, "address": f"{name} ROAD"}
        (root / "entities" / f"{name}.txt").write_text(json.dumps(entities))
    return list(read_sroie_dir(root))


def _events(plan: DemoPlan, kind: str) -> list[PlannedEvent]:
    return [
        step
        for step in plan.steps
        if isinstance(step, PlannedEvent) and step.kind == kind
    ]


def test_plan_counts_for_the_shipped_samples(plan: DemoPlan) -> None:
    assert plan.receipts == 100
    assert plan.records("lines") == 805
    assert plan.records("words") == 2357
    assert plan.counts() == Counter(
        {
            ("lines", "delta_merge"): 5,
            ("words", "delta_merge"): 5,
            ("words", "label_update"): 1690 + 3,
            ("lines", "records_delete"): 1,
            ("words", "records_delete"): 1,
        }
    )


def test_events_come_in_the_documented_order(plan: DemoPlan) -> None:
    kinds = [step.kind for step in plan.steps]
    runs = [kind for index, kind in enumerate(kinds) if kinds[index - 1] != kind]

    assert runs == ["delta_merge", "label_update", "records_delete"]
    assert [step.collection for step in plan.steps[:10]] == ["lines"] * 5 + [
        "words"
    ] * 5


def test_planning_is_deterministic(receipts: list[Receipt], plan: DemoPlan) -> None:
    again = plan_demo(list(read_cord_dir(shipped_samples_dir())), HashingEmbedder())

    assert [step.idempotency_key for step in again.steps] == [
        step.idempotency_key for step in plan.steps
    ]
    for first, second in zip(plan.steps, again.steps, strict=True):
        if isinstance(first, PlannedDelta):
            assert isinstance(second, PlannedDelta)
            assert first.delta_id == second.delta_id
            assert np.array_equal(first.records.embeddings, second.records.embeddings)
        else:
            assert first == second


def test_idempotency_keys_are_unique_per_collection(plan: DemoPlan) -> None:
    keys = Counter((step.collection, step.idempotency_key) for step in plan.steps)

    assert max(keys.values()) == 1
    assert all(key.startswith("demo:") for _, key in keys)


def test_deltas_hold_twenty_receipts_each(plan: DemoPlan) -> None:
    deltas = [step for step in plan.steps if isinstance(step, PlannedDelta)]
    first = deltas[0]

    receipts = {meta["image_id"] for meta in first.records.metadatas}
    assert len(receipts) == 20
    assert first.idempotency_key.startswith("demo:cord:lines:delta:0001:")
    assert first.records.embeddings.shape == (len(first.records), 384)


def test_delta_keys_change_with_their_content(receipts: list[Receipt]) -> None:
    small = plan_demo(receipts[:10], HashingEmbedder())
    other_model = plan_demo(receipts[:10], HashingEmbedder(dimension=32))

    keys = {step.idempotency_key for step in small.steps[:2]}
    assert keys.isdisjoint(step.idempotency_key for step in other_model.steps[:2])


def test_labels_are_valid_ground_truth_at_a_fixed_time(plan: DemoPlan) -> None:
    labels = _events(plan, "label_update")
    first = labels[0].payload

    assert isinstance(first, LabelUpdate)
    assert first.valid_labels == ["QUANTITY"]
    assert first.status == "VALID"
    assert first.proposed_by == "cord-ground-truth"
    assert first.validated_at == LABELLED_AT
    assert labels[0].idempotency_key.startswith("demo:label:IMAGE#")


def test_corrections_move_a_label_to_invalid(plan: DemoPlan) -> None:
    corrections = [
        step
        for step in _events(plan, "label_update")
        if step.idempotency_key.startswith("demo:correction:")
    ]

    assert len(corrections) == 3
    for step in corrections:
        payload = step.payload
        assert isinstance(payload, LabelUpdate)
        assert payload.valid_labels == []
        assert len(payload.invalid_labels) == 1
        assert payload.status == "INVALID"


def test_the_last_receipt_is_deleted_from_both_collections(
    receipts: list[Receipt], plan: DemoPlan
) -> None:
    deletes = _events(plan, "records_delete")
    last = receipts[-1]

    assert [step.collection for step in deletes] == ["lines", "words"]
    for step in deletes:
        assert step.payload == RecordsDelete(
            image_id=last.image_id, receipt_id=last.receipt_id
        )


def test_sroie_merchants_update_both_collections(tmp_path: Path) -> None:
    plan = plan_demo(_sroie_receipts(tmp_path), HashingEmbedder(dimension=16))

    updates = _events(plan, "metadata_update")

    assert [step.collection for step in updates] == ["lines", "lines", "words", "words"]
    payload = updates[0].payload
    assert isinstance(payload, MetadataUpdate)
    assert payload.changes == {"merchant_name": "SHOP ONE", "address": "X001 ROAD"}


def test_expected_records_drop_the_deleted_receipt(
    receipts: list[Receipt], plan: DemoPlan
) -> None:
    expected = expected_final_records(plan)
    last = receipts[-1]
    prefix = receipt_prefix(last.image_id, last.receipt_id)

    assert len(expected["lines"]) == 805 - len(last.lines)
    assert len(expected["words"]) == 2357 - sum(len(line.words) for line in last.lines)
    assert not any(key.startswith(prefix) for key in expected["words"])


def test_expected_records_carry_labels_and_corrections(plan: DemoPlan) -> None:
    words = expected_final_records(plan)["words"]
    corrected = [
        step.idempotency_key.removeprefix("demo:correction:")
        for step in _events(plan, "label_update")
        if step.idempotency_key.startswith("demo:correction:")
    ]
    labelled = next(
        step.idempotency_key.removeprefix("demo:label:")
        for step in _events(plan, "label_update")
        if step.idempotency_key.removeprefix("demo:label:") not in corrected
    )

    assert words[labelled].metadata["valid_labels"] == ",QUANTITY,"
    assert words[labelled].metadata["label_status"] == "VALID"
    assert words[labelled].metadata["label_validated_at"] == "2024-01-01T00:00:00+00:00"
    for record_id in corrected:
        metadata = words[record_id].metadata
        assert "valid_labels" not in metadata
        assert str(metadata["invalid_labels"]).startswith(",")
        assert metadata["label_status"] == "INVALID"


def test_expected_records_apply_merchant_updates_and_removals(tmp_path: Path) -> None:
    receipts = _sroie_receipts(tmp_path)
    plan = plan_demo(receipts, HashingEmbedder(dimension=16), delete_one=False)
    first = receipts[0]
    removal = MetadataUpdate(
        image_id=first.image_id, receipt_id=1, changes={"address": None}
    )
    plan = DemoPlan(
        receipts=plan.receipts,
        steps=(*plan.steps, PlannedEvent("lines", "demo:test:removal", removal)),
    )

    expected = expected_final_records(plan)

    for record in expected["words"].values():
        assert record.metadata["merchant_name"] in {"SHOP ONE", "SHOP TWO"}
        assert "address" in record.metadata
    addresses = [
        "address" in record.metadata
        for record in expected["lines"].values()
        if record.metadata["image_id"] == first.image_id
    ]
    assert addresses == [False, False]


def test_expected_records_hold_the_planned_vectors(plan: DemoPlan) -> None:
    delta = plan.steps[0]
    assert isinstance(delta, PlannedDelta)
    lines = expected_final_records(plan)["lines"]

    record = lines[delta.records.ids[0]]

    assert np.array_equal(record.embedding, delta.records.embeddings[0])
    assert record.document == delta.records.documents[0]
