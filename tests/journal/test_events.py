"""The event model: names, payload validation, the envelope's JSON form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from journal.errors import InvalidCollectionName
from journal.events import (
    COLLECTION_RULE,
    DeltaMerge,
    Envelope,
    EventParked,
    EventSkipped,
    LabelUpdate,
    LatestMoved,
    MetadataUpdate,
    NewEvent,
    RecordsDelete,
    SnapshotRecorded,
    SnapshotRequest,
    validate_collection_name,
)

BAD_NAMES: list[object] = [
    "",
    "..",
    "a/b",
    "/abs",
    "a",
    "x" * 64,
    "a b",
    "lines\n",
    "-lines",
    "lines_",
    None,
    42,
]

SHA = "ab" * 32


def _error_locations(error: ValidationError) -> list[tuple[Any, ...]]:
    return [tuple(item["loc"]) for item in error.errors()]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_invalid_collection_name_is_refused_naming_the_rule(name: object) -> None:
    with pytest.raises(InvalidCollectionName) as caught:
        validate_collection_name(name)

    assert caught.value.rule == COLLECTION_RULE
    assert COLLECTION_RULE in str(caught.value)


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_new_event_with_invalid_collection_names_the_rule(name: object) -> None:
    with pytest.raises(ValidationError) as caught:
        NewEvent(collection=name, payload=SnapshotRequest())  # type: ignore[arg-type]

    assert ("collection",) in _error_locations(caught.value)
    if isinstance(name, str):
        assert COLLECTION_RULE in str(caught.value)


@pytest.mark.parametrize("name", ["abc", "lines", "words-v2", "a_1", "x" * 63])
def test_valid_collection_names_are_accepted(name: str) -> None:
    assert validate_collection_name(name) == name


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "delta_merge", "key": "k", "sha256": "xyz", "records": 1}, "sha256"),
        (
            {"type": "delta_merge", "key": "k", "sha256": SHA, "records": -1},
            "records",
        ),
        (
            {"type": "metadata_update", "image_id": "bad id!", "receipt_id": 1},
            "image_id",
        ),
        (
            {
                "type": "metadata_update",
                "image_id": "img",
                "receipt_id": 0,
                "changes": {"merchant_name": "A"},
            },
            "receipt_id",
        ),
        (
            {
                "type": "label_update",
                "image_id": "img",
                "receipt_id": 1,
                "line_id": 1,
                "word_id": 1,
                "valid_labels": ["lowercase"],
            },
            "valid_labels",
        ),
        (
            {
                "type": "label_update",
                "image_id": "img",
                "receipt_id": 1,
                "line_id": 1,
                "word_id": 1,
                "status": "MAYBE",
            },
            "status",
        ),
    ],
)
def test_invalid_payload_error_names_the_field(
    payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        NewEvent.model_validate({"collection": "lines", "payload": payload})

    flagged = {part for loc in _error_locations(caught.value) for part in loc}
    assert field in flagged


def test_unknown_payload_type_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        NewEvent.model_validate({"collection": "lines", "payload": {"type": "nope"}})

    assert "nope" in str(caught.value)


def test_label_both_valid_and_invalid_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        LabelUpdate(
            image_id="img",
            receipt_id=1,
            line_id=2,
            word_id=3,
            valid_labels=["DATE", "GRAND_TOTAL"],
            invalid_labels=["DATE"],
        )

    assert "both valid and invalid" in str(caught.value)
    assert "DATE" in str(caught.value)


@pytest.mark.parametrize("key", ["image_id", "receipt_id", "line_id", "text"])
def test_metadata_update_refuses_identity_keys(key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MetadataUpdate(image_id="img", receipt_id=1, changes={key: "x"})

    assert "identity keys cannot be changed" in str(caught.value)
    assert key in str(caught.value)


def test_word_delete_without_line_is_refused() -> None:
    with pytest.raises(ValidationError, match="word_id given without line_id"):
        RecordsDelete(image_id="img", receipt_id=1, word_id=4)


PAYLOADS = [
    DeltaMerge(key="lines/deltas/1/delta.tar.gz", sha256=SHA, records=3, dimension=8),
    MetadataUpdate(
        image_id="img", receipt_id=1, changes={"merchant_name": "Shop", "phone": None}
    ),
    LabelUpdate(
        image_id="img",
        receipt_id=1,
        line_id=2,
        word_id=3,
        valid_labels=["DATE"],
        invalid_labels=["GRAND_TOTAL"],
        status="VALID",
        proposed_by="agent",
        validated_at=datetime(2025, 1, 1, tzinfo=UTC),
    ),
    RecordsDelete(image_id="img", receipt_id=1, line_id=2),
    SnapshotRequest(reason="nightly"),
    SnapshotRecorded(version="v1", applied_seq=4, location="s3://b/k", digest="d"),
    LatestMoved(version="v2", previous_version="v1", applied_seq=5),
    EventParked(parked_seq=3, error="boom", attempts=3),
    EventSkipped(skipped_seq=3, reason="operator"),
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.type)
def test_envelope_json_round_trips(payload: Any) -> None:
    envelope = Envelope(
        collection="lines",
        seq=7,
        event_id="01JTESTEVENT",
        idempotency_key="key-1",
        recorded_at=datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        producer="tests",
        payload=payload,
    )

    text = envelope.to_json()
    again = Envelope.from_json(text)

    assert again == envelope
    assert again.type == payload.type
    assert f'"type":"{payload.type}"' in text


def test_envelope_with_type_differing_from_payload_is_refused() -> None:
    envelope = Envelope(
        collection="lines",
        seq=1,
        event_id="e",
        recorded_at=datetime(2025, 1, 1, tzinfo=UTC),
        producer="tests",
        payload=SnapshotRequest(),
    )
    data = envelope.model_dump(mode="json")
    data["type"] = "delta_merge"

    with pytest.raises(ValidationError, match="differs from payload type"):
        Envelope.model_validate(data)


def test_bookkeeping_kinds_are_flagged() -> None:
    kinds = {
        payload.type: Envelope(
            collection="lines",
            seq=1,
            event_id="e",
            recorded_at=datetime(2025, 1, 1, tzinfo=UTC),
            producer="tests",
            payload=payload,
        ).is_bookkeeping
        for payload in PAYLOADS
    }

    assert {kind for kind, flag in kinds.items() if flag} == {
        "snapshot_recorded",
        "latest_moved",
        "event_parked",
        "event_skipped",
    }
