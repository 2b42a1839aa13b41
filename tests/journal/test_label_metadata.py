"""The one encoding of word labels in record metadata."""

from __future__ import annotations

from datetime import UTC, datetime

from journal.events import LabelUpdate
from journal.labels import LABEL_KEYS, join_labels, label_metadata, split_labels

IMAGE = "3f1e2d4c-0000-4000-8000-000000000001"


def _update(**fields: object) -> LabelUpdate:
    return LabelUpdate.model_validate(
        {"image_id": IMAGE, "receipt_id": 1, "line_id": 2, "word_id": 3, **fields}
    )


def test_join_labels_sorts_removes_repeats_and_wraps_in_commas() -> None:
    assert join_labels(["TAX", "GRAND_TOTAL", "TAX"]) == ",GRAND_TOTAL,TAX,"


def test_join_labels_of_nothing_is_none() -> None:
    assert join_labels([]) is None


def test_split_labels_reverses_join() -> None:
    assert split_labels(join_labels(["B", "A"])) == ["A", "B"]
    assert split_labels(None) == []
    assert split_labels("") == []


def test_label_metadata_encodes_full_state() -> None:
    payload = _update(
        valid_labels=["TOTAL_X", "DATE"],
        invalid_labels=["TIME"],
        status="VALID",
        proposed_by="agent",
        validated_at=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    )

    assert label_metadata(payload) == {
        "valid_labels": ",DATE,TOTAL_X,",
        "invalid_labels": ",TIME,",
        "label_status": "VALID",
        "label_proposed_by": "agent",
        "label_validated_at": "2024-05-06T07:08:09+00:00",
    }


def test_label_metadata_removes_keys_of_empty_state() -> None:
    changes = label_metadata(_update())

    assert set(changes) == set(LABEL_KEYS)
    assert changes["label_status"] == "NONE"
    assert [key for key, value in changes.items() if value is None] == [
        "valid_labels",
        "invalid_labels",
        "label_proposed_by",
        "label_validated_at",
    ]
