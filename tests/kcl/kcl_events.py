"""A reproducible mix of producer events for the ``lines`` and ``words``
collections: deltas of new receipts, metadata and label changes, deletes."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from journal.deltas import DeltaRecords, write_delta
from journal.events import (
    LabelUpdate,
    MetadataUpdate,
    NewEvent,
    Payload,
    RecordsDelete,
)
from journal.ids import line_id_of, word_id_of
from journal.objectstore import ObjectStore

DIM = 8
IMAGE = "3f2a9c1e-0b7d-4e55-9a21-6c0d8e4f1a2b"
LINES_PER_RECEIPT = 3
WORDS_PER_LINE = 3
#: One event in this many (per collection) is the delta of a new receipt.
DELTA_EVERY = 10


def receipt_records(collection: str, receipt_id: int, seed: int) -> DeltaRecords:
    """The line or word records of one receipt."""
    rng = np.random.default_rng(seed)
    ids: list[str] = []
    docs: list[str] = []
    metas: list[dict[str, Any]] = []
    for line in range(1, LINES_PER_RECEIPT + 1):
        base = {"image_id": IMAGE, "receipt_id": receipt_id, "line_id": line}
        if collection == "lines":
            ids.append(line_id_of(IMAGE, receipt_id, line))
            docs.append(f"line {receipt_id}.{line}")
            metas.append({**base, "text": f"line {line}"})
            continue
        for word in range(1, WORDS_PER_LINE + 1):
            ids.append(word_id_of(IMAGE, receipt_id, line, word))
            docs.append(f"word {receipt_id}.{line}.{word}")
            metas.append({**base, "word_id": word, "text": f"w{line}{word}"})
    embeddings = rng.standard_normal((len(ids), DIM)).astype(np.float32)
    return DeltaRecords(ids, embeddings, docs, metas)


class EventPlan:
    """Produces the next event of a collection, deterministically."""

    def __init__(self, objects: ObjectStore, workdir: Path, seed: int = 7) -> None:
        self._objects = objects
        self._workdir = workdir
        self._rng = random.Random(seed)
        self._count: dict[str, int] = {}
        self._receipts: dict[str, int] = {}

    def next(self, collection: str) -> NewEvent:
        """The next event for ``collection``."""
        count = self._count.get(collection, 0)
        self._count[collection] = count + 1
        if count % DELTA_EVERY == 0:
            payload: Payload = self._delta(collection)
        else:
            payload = self._change(collection)
        return NewEvent(collection=collection, payload=payload, producer="kcl-test")

    def _delta(self, collection: str) -> Payload:
        receipt = self._receipts.get(collection, 0) + 1
        self._receipts[collection] = receipt
        seed = receipt * 100 + (1 if collection == "lines" else 2)
        records = receipt_records(collection, receipt, seed)
        return write_delta(self._objects, collection, records, workdir=self._workdir)

    def _change(self, collection: str) -> Payload:
        receipt = self._rng.randint(1, self._receipts[collection])
        line = self._rng.randint(1, LINES_PER_RECEIPT)
        roll = self._rng.random()
        if roll < 0.1:
            word = self._rng.randint(1, WORDS_PER_LINE)
            return RecordsDelete(
                image_id=IMAGE,
                receipt_id=receipt,
                line_id=line,
                word_id=word if collection == "words" else None,
            )
        if roll < 0.55 and collection == "words":
            return LabelUpdate(
                image_id=IMAGE,
                receipt_id=receipt,
                line_id=line,
                word_id=self._rng.randint(1, WORDS_PER_LINE),
                valid_labels=[self._rng.choice(["DATE", "GRAND_TOTAL", "TAX"])],
                status="VALID",
                proposed_by="kcl-test",
            )
        return MetadataUpdate(
            image_id=IMAGE,
            receipt_id=receipt,
            changes={"merchant_name": f"Shop {self._rng.randint(1, 99)}"},
        )
