"""Turn receipts into the demo's events, without touching a journal.

Planning is a pure function of the receipts and the embedder, so tests can
compute what the collections must hold (:mod:`chroma_journal.demo.expected`)
and the loader can give every event an idempotency key that is the same on
every run. The plan, in order:

1. delta merges: ``lines`` then ``words``, one delta per
   ``receipts_per_delta`` receipts of one source;
2. a ``label_update`` per labelled word (CORD ground truth), status VALID;
3. a ``metadata_update`` per receipt with merchant data (SROIE), into both
   collections;
4. a few label corrections: the label moves to ``invalid_labels``;
5. the deletion of one receipt (the last one read) from both collections.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby

from chroma_journal.demo.embedder import Embedder
from chroma_journal.demo.model import Line, Metadata, Receipt, Word
from journal.deltas import DeltaRecords
from journal.events import LabelUpdate, MetadataUpdate, RecordsDelete
from journal.ids import receipt_prefix

LINES = "lines"
WORDS = "words"
COLLECTIONS = (LINES, WORDS)

GROUND_TRUTH = "cord-ground-truth"
#: Fixed times, so that a plan (and the records it leads to) never depends on
#: when the loader ran.
LABELLED_AT = datetime(2024, 1, 1, tzinfo=UTC)
CORRECTED_AT = datetime(2024, 1, 2, tzinfo=UTC)

RECEIPTS_PER_DELTA = 20
CORRECTIONS = 3

EventPayload = MetadataUpdate | LabelUpdate | RecordsDelete


@dataclass(frozen=True, eq=False)
class PlannedDelta:
    """A delta to write, then merge with a ``delta_merge`` event."""

    collection: str
    idempotency_key: str
    delta_id: str
    records: DeltaRecords

    @property
    def kind(self) -> str:
        """The event type this step appends."""
        return "delta_merge"


@dataclass(frozen=True)
class PlannedEvent:
    """An event whose payload is known before anything is written."""

    collection: str
    idempotency_key: str
    payload: EventPayload

    @property
    def kind(self) -> str:
        """The event type this step appends."""
        return self.payload.type


PlannedStep = PlannedDelta | PlannedEvent


@dataclass(frozen=True)
class DemoPlan:
    """Every event the demo appends, in order, and what it was made from."""

    receipts: int
    steps: tuple[PlannedStep, ...]

    def counts(self) -> Counter[tuple[str, str]]:
        """Number of planned events per ``(collection, kind)``."""
        return Counter((step.collection, step.kind) for step in self.steps)

    def records(self, collection: str) -> int:
        """Number of records the plan's deltas hold for ``collection``."""
        return sum(
            len(step.records)
            for step in self.steps
            if isinstance(step, PlannedDelta) and step.collection == collection
        )


def plan_demo(
    receipts: Sequence[Receipt],
    embedder: Embedder,
    *,
    receipts_per_delta: int = RECEIPTS_PER_DELTA,
    corrections: int = CORRECTIONS,
    delete_one: bool = True,
) -> DemoPlan:
    """Plan the demo's events for ``receipts`` (see the module docstring)."""
    if receipts_per_delta < 1:
        raise ValueError("receipts_per_delta must be at least 1")
    deleted = receipts[-1] if delete_one and receipts else None
    steps: list[PlannedStep] = []
    for collection in COLLECTIONS:
        steps.extend(_deltas(receipts, collection, embedder, receipts_per_delta))
    steps.extend(_labels(receipts))
    steps.extend(_merchant_updates(receipts))
    kept = [receipt for receipt in receipts if receipt is not deleted]
    steps.extend(_corrections(kept, corrections))
    if deleted is not None:
        steps.extend(_deletion(deleted))
    return DemoPlan(receipts=len(receipts), steps=tuple(steps))


# -- deltas -------------------------------------------------------------------


def _deltas(
    receipts: Sequence[Receipt], collection: str, embedder: Embedder, size: int
) -> Iterator[PlannedDelta]:
    for source, group in groupby(receipts, key=lambda receipt: receipt.source):
        batch = list(group)
        for index, start in enumerate(range(0, len(batch), size), start=1):
            records = _records(batch[start : start + size], collection, embedder)
            if not len(records):
                continue
            digest = _content_digest(records)[:12]
            yield PlannedDelta(
                collection=collection,
                # The digest makes a delta of other content (another limit,
                # another embedder) a new event instead of a silent duplicate.
                idempotency_key=f"demo:{source}:{collection}:delta:{index:04d}:{digest}",
                delta_id=f"demo-{source}-{index:04d}-{digest}",
                records=records,
            )


def _records(
    receipts: Sequence[Receipt], collection: str, embedder: Embedder
) -> DeltaRecords:
    ids: list[str] = []
    documents: list[str] = []
    metadatas: list[Metadata] = []
    for receipt in receipts:
        for line in receipt.lines:
            if collection == LINES:
                ids.append(receipt.line_record_id(line))
                documents.append(line.text)
                metadatas.append(receipt.line_metadata(line))
                continue
            for word in line.words:
                ids.append(receipt.word_record_id(line, word))
                documents.append(word.text)
                metadatas.append(receipt.word_metadata(line, word))
    embeddings = embedder.embed(documents).reshape(len(ids), embedder.dimension)
    return DeltaRecords(
        ids=ids, embeddings=embeddings, documents=documents, metadatas=metadatas
    )


def _content_digest(records: DeltaRecords) -> str:
    digest = hashlib.sha256()
    for index, record_id in enumerate(records.ids):
        digest.update(record_id.encode())
        digest.update(records.documents[index].encode())
        digest.update(json.dumps(records.metadatas[index], sort_keys=True).encode())
    digest.update(records.embeddings.tobytes())
    return digest.hexdigest()


# -- labels, metadata, corrections, deletion -----------------------------------


def _labelled(receipt: Receipt) -> Iterator[tuple[Line, Word, str]]:
    for line in receipt.lines:
        for word in line.words:
            if word.label is not None:
                yield line, word, word.label


def _labels(receipts: Sequence[Receipt]) -> Iterator[PlannedEvent]:
    for receipt in receipts:
        for line, word, label in _labelled(receipt):
            payload = _label_update(receipt, line, word, valid=[label])
            key = f"demo:label:{receipt.word_record_id(line, word)}"
            yield PlannedEvent(WORDS, key, payload)


def _merchant_updates(receipts: Sequence[Receipt]) -> Iterator[PlannedEvent]:
    # One collection after the other, so that they append in long batches.
    for collection in COLLECTIONS:
        for receipt in receipts:
            if not receipt.merchant:
                continue
            payload = MetadataUpdate(
                image_id=receipt.image_id,
                receipt_id=receipt.receipt_id,
                changes=dict(receipt.merchant),
            )
            prefix = receipt_prefix(receipt.image_id, receipt.receipt_id)
            yield PlannedEvent(collection, f"demo:merchant:{prefix}", payload)


def _corrections(receipts: Sequence[Receipt], count: int) -> Iterator[PlannedEvent]:
    """Reject the first label of each of the first ``count`` labelled receipts,
    as a reviewer would."""
    chosen = 0
    for receipt in receipts:
        if chosen >= count:
            return
        first = next(_labelled(receipt), None)
        if first is None:
            continue
        line, word, label = first
        payload = _label_update(receipt, line, word, invalid=[label])
        key = f"demo:correction:{receipt.word_record_id(line, word)}"
        yield PlannedEvent(WORDS, key, payload)
        chosen += 1


def _deletion(receipt: Receipt) -> Iterator[PlannedEvent]:
    payload = RecordsDelete(image_id=receipt.image_id, receipt_id=receipt.receipt_id)
    prefix = receipt_prefix(receipt.image_id, receipt.receipt_id)
    for collection in COLLECTIONS:
        yield PlannedEvent(collection, f"demo:delete:{prefix}", payload)


def _label_update(
    receipt: Receipt,
    line: Line,
    word: Word,
    *,
    valid: Sequence[str] = (),
    invalid: Sequence[str] = (),
) -> LabelUpdate:
    corrected = bool(invalid)
    return LabelUpdate(
        image_id=receipt.image_id,
        receipt_id=receipt.receipt_id,
        line_id=line.line_id,
        word_id=word.word_id,
        valid_labels=list(valid),
        invalid_labels=list(invalid),
        status="INVALID" if corrected else "VALID",
        proposed_by=GROUND_TRUTH,
        validated_at=CORRECTED_AT if corrected else LABELLED_AT,
    )
