"""The demo loader: real receipts (CORD, optionally SROIE) turned into events.

Typical use::

    summary = load_demo(journal, objects)            # the shipped CORD samples
    expected = expected_final_records(summary.plan)  # what the consumer must build
"""

from __future__ import annotations

from chroma_journal.demo.cord import CORD_LABELS, read_cord_dir, shipped_samples_dir
from chroma_journal.demo.embedder import Embedder, HashingEmbedder
from chroma_journal.demo.expected import ExpectedRecord, expected_final_records
from chroma_journal.demo.loader import (
    CollectionSummary,
    LoadSummary,
    execute_plan,
    load_demo,
    read_receipts,
)
from chroma_journal.demo.model import Box, Line, Receipt, Word, image_id_for
from chroma_journal.demo.plan import (
    COLLECTIONS,
    DemoPlan,
    PlannedDelta,
    PlannedEvent,
    PlannedStep,
    plan_demo,
)
from chroma_journal.demo.sroie import read_sroie_dir

__all__ = [
    "COLLECTIONS",
    "CORD_LABELS",
    "Box",
    "CollectionSummary",
    "DemoPlan",
    "Embedder",
    "ExpectedRecord",
    "HashingEmbedder",
    "Line",
    "LoadSummary",
    "PlannedDelta",
    "PlannedEvent",
    "PlannedStep",
    "Receipt",
    "Word",
    "execute_plan",
    "expected_final_records",
    "image_id_for",
    "load_demo",
    "plan_demo",
    "read_cord_dir",
    "read_receipts",
    "read_sroie_dir",
    "shipped_samples_dir",
]
