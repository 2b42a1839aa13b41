"""What the collections hold after a demo plan is applied, computed in memory.

This is an independent, plain-Python reading of the event semantics the
consumer implements, for tests that compare the consumer's result (or its
content digest) against records built directly:

- ``delta_merge``: upsert; a record is replaced by the delta's version
  (within one plan every record id is in exactly one delta);
- ``label_update``: the word's label keys are replaced as
  :func:`journal.labels.label_metadata` says (None removes a key); an
  update for a record that does not exist changes nothing;
- ``metadata_update``: every record of the receipt gets the changes, None
  removes the key;
- ``records_delete``: records of the receipt (or of the line or word when
  those ids are given) are removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from chroma_journal.demo.model import Metadata
from chroma_journal.demo.plan import (
    COLLECTIONS,
    DemoPlan,
    PlannedDelta,
    PlannedEvent,
)
from journal.events import LabelUpdate, MetadataUpdate, RecordsDelete, Scalar
from journal.ids import word_id_of
from journal.labels import label_metadata

Embedding = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True, eq=False)
class ExpectedRecord:
    """One record as a collection must hold it."""

    embedding: Embedding
    document: str
    metadata: Metadata


Records = dict[str, ExpectedRecord]


def expected_final_records(plan: DemoPlan) -> dict[str, Records]:
    """Apply every planned event in order; the records per collection."""
    state: dict[str, Records] = {name: {} for name in COLLECTIONS}
    for step in plan.steps:
        records = state.setdefault(step.collection, {})
        if isinstance(step, PlannedDelta):
            _merge(records, step)
        else:
            _apply(records, step)
    return state


def _merge(records: Records, step: PlannedDelta) -> None:
    delta = step.records
    for index, record_id in enumerate(delta.ids):
        records[record_id] = ExpectedRecord(
            embedding=delta.embeddings[index].copy(),
            document=delta.documents[index],
            metadata=dict(delta.metadatas[index]),
        )


def _apply(records: Records, step: PlannedEvent) -> None:
    payload = step.payload
    if isinstance(payload, LabelUpdate):
        record_id = word_id_of(
            payload.image_id, payload.receipt_id, payload.line_id, payload.word_id
        )
        if record_id in records:
            _change(records, [record_id], label_metadata(payload))
    elif isinstance(payload, MetadataUpdate):
        _change(records, _matching(records, payload), payload.changes)
    elif isinstance(payload, RecordsDelete):
        for record_id in _matching(records, payload):
            del records[record_id]


def _matching(records: Records, payload: MetadataUpdate | RecordsDelete) -> list[str]:
    """Ids of the records the payload addresses (by metadata, not id text)."""
    wanted: dict[str, int] = {
        "receipt_id": payload.receipt_id,
    }
    if isinstance(payload, RecordsDelete):
        if payload.line_id is not None:
            wanted["line_id"] = payload.line_id
        if payload.word_id is not None:
            wanted["word_id"] = payload.word_id
    return [
        record_id
        for record_id, record in records.items()
        if record.metadata.get("image_id") == payload.image_id
        and all(record.metadata.get(key) == value for key, value in wanted.items())
    ]


def _change(
    records: Records,
    record_ids: list[str],
    changes: Mapping[str, Scalar | None],
) -> None:
    for record_id in record_ids:
        record = records[record_id]
        metadata = dict(record.metadata)
        for key, value in changes.items():
            if value is None:
                metadata.pop(key, None)
            else:
                metadata[key] = value
        records[record_id] = ExpectedRecord(
            embedding=record.embedding, document=record.document, metadata=metadata
        )
