"""Upcasting payloads written by older code when reading envelopes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from journal.events import Envelope, LabelUpdate, SnapshotRequest
from journal.upcast import (
    UnknownSchemaVersion,
    UpcasterRegistry,
    UpcastError,
    current_versions,
    parse_envelope,
)

IMAGE = "3f2a9c1e-0b7d-4e55-9a21-6c0d8e4f1a2b"


def stored(payload: dict[str, Any]) -> str:
    """An envelope as the journal stores it, around a raw payload."""
    return json.dumps(
        {
            "collection": "words",
            "seq": 7,
            "event_id": "01JEXAMPLE",
            "idempotency_key": None,
            "recorded_at": "2026-12-03T16:15:30Z",
            "producer": "old-system",
            "type": payload["type"],
            "payload": payload,
        }
    )


def old_label(**fields: Any) -> dict[str, Any]:
    return {
        "type": "label_update",
        "schema_version": 0,
        "image_id": IMAGE,
        "receipt_id": 1,
        "line_id": 2,
        "word_id": 3,
        **fields,
    }


def test_old_comma_joined_labels_are_read_as_lists() -> None:
    envelope = parse_envelope(
        stored(old_label(valid_labels=",GRAND_TOTAL,TAX,", invalid_labels=",DATE,"))
    )

    payload = envelope.payload
    assert isinstance(payload, LabelUpdate)
    assert payload.schema_version == 1
    assert payload.valid_labels == ["GRAND_TOTAL", "TAX"]
    assert payload.invalid_labels == ["DATE"]


def test_old_empty_or_absent_label_strings_become_empty_lists() -> None:
    envelope = parse_envelope(stored(old_label(valid_labels="", invalid_labels=None)))

    assert isinstance(envelope.payload, LabelUpdate)
    assert envelope.payload.valid_labels == []
    assert envelope.payload.invalid_labels == []


def test_old_labels_with_repeats_and_spaces_are_cleaned() -> None:
    envelope = parse_envelope(stored(old_label(valid_labels=",TAX, TAX,,TOTAL,")))

    assert isinstance(envelope.payload, LabelUpdate)
    assert envelope.payload.valid_labels == ["TAX", "TOTAL"]


def test_old_label_in_both_lists_is_still_refused() -> None:
    with pytest.raises(ValidationError, match="both valid and invalid"):
        parse_envelope(stored(old_label(valid_labels=",TAX,", invalid_labels=",TAX,")))


def test_current_envelopes_parse_as_before() -> None:
    envelope = Envelope(
        collection="words",
        seq=3,
        event_id="e3",
        recorded_at="2026-12-03T16:15:30Z",  # type: ignore[arg-type]
        producer="test",
        payload=LabelUpdate(
            image_id=IMAGE, receipt_id=1, line_id=1, word_id=1, valid_labels=["TAX"]
        ),
    )

    data = envelope.to_json()

    assert parse_envelope(data) == Envelope.from_json(data) == envelope
    assert parse_envelope(data.encode()) == envelope


def test_payload_from_a_future_version_is_refused() -> None:
    future = SnapshotRequest().model_dump() | {"schema_version": 2}

    with pytest.raises(UnknownSchemaVersion, match="upgrade") as refused:
        parse_envelope(stored(future))

    assert (refused.value.kind, refused.value.version) == ("snapshot_request", 2)
    assert refused.value.current == 1


@pytest.mark.parametrize("version", ["1", 1.0, True, -1])
def test_schema_version_must_be_a_whole_number(version: object) -> None:
    with pytest.raises(UpcastError, match="integer"):
        parse_envelope(stored(old_label(schema_version=version)))


def test_payload_without_a_version_is_read_as_version_one() -> None:
    payload = SnapshotRequest(reason="r").model_dump()
    del payload["schema_version"]

    assert parse_envelope(stored(payload)).payload == SnapshotRequest(reason="r")


def test_upcasters_run_as_a_chain_and_a_missing_link_is_an_error() -> None:
    registry = UpcasterRegistry({"label_update": 2})
    gapped = UpcasterRegistry({"label_update": 2})

    @registry.register("label_update", 0)
    def rename(payload: dict[str, Any]) -> dict[str, Any]:
        payload["labels"] = payload.pop("old_labels")
        return payload

    @registry.register("label_update", 1)
    @gapped.register("label_update", 1)
    def split(payload: dict[str, Any]) -> dict[str, Any]:
        payload["valid_labels"] = payload.pop("labels").split("+")
        return payload

    assert registry.upcast(
        {"type": "label_update", "schema_version": 0, "old_labels": "A+B"}
    ) == {"type": "label_update", "schema_version": 2, "valid_labels": ["A", "B"]}
    with pytest.raises(UpcastError, match="no upcaster"):
        gapped.upcast({"type": "label_update", "schema_version": 0, "old_labels": ""})


def test_registering_an_upcaster_for_a_current_version_is_refused() -> None:
    registry = UpcasterRegistry(current_versions())

    with pytest.raises(ValueError, match="nothing to upcast"):
        registry.register("label_update", 1)
    with pytest.raises(ValueError, match="unknown payload kind"):
        registry.register("no_such_kind", 0)


def test_unknown_kinds_are_left_for_validation_to_report() -> None:
    with pytest.raises(ValidationError):
        parse_envelope(stored({"type": "no_such_kind", "schema_version": 0}))
