"""Applying one journal event to an open collection (DESIGN section 3).

One function per payload kind. Each is idempotent (applying an event twice
leaves the records as applying it once), which is what lets the consumer
retry a failed event in the same working copy and lets a replay from a
snapshot reach the live consumer's digest. Records carry the metadata keys
``image_id`` (str), ``receipt_id`` and ``line_id`` (int), and ``word_id``
(int, words only).

Semantics:

- ``delta_merge``: fetch the delta (sha256 checked, extracted safely into a
  scratch directory) and upsert its records. ChromaDB's upsert replaces the
  embedding and document and *merges* metadata: keys the delta does not name
  keep their stored value, so labels and receipt metadata applied before a
  record is re-embedded survive it.
- ``metadata_update``: every record of (image_id, receipt_id) gets the
  changes; a None value removes the key.
- ``label_update``: the word's record gets the label keys of
  :func:`journal.labels.label_metadata` (``",A,B,"`` lists, an empty list
  removes its key). A word that is not stored is skipped with a warning.
- ``records_delete``: the receipt's records, or the line's record and its
  words, or one word.
- ``snapshot_request`` and bookkeeping kinds change no records; a snapshot
  request is reported in the result for the snapshot step.
"""

from __future__ import annotations

import tempfile
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from journal.deltas import DeltaLimits, fetch_delta, iter_delta_records
from journal.events import (
    DeltaMerge,
    Envelope,
    LabelUpdate,
    MetadataUpdate,
    RecordsDelete,
    SnapshotRequest,
)
from journal.ids import word_id_of
from journal.labels import label_metadata
from journal.objectstore import ObjectStore
from pipeline.chroma import ChromaCollection, Metadata, ReceiptKey, RecordPage
from pipeline.receipt_index import ReceiptIndex

log = structlog.get_logger(__name__)


@dataclass
class ApplyResult:
    """What applying events did, so that the record hashes can be refreshed
    for exactly the ids it changed: ``touched`` holds every id upserted or
    deleted, ``metadata_touched`` those whose metadata alone was updated, and
    ``metadata_after`` the stored metadata of some of those, known exactly
    without reading it back (see :func:`apply_metadata_run`)."""

    upserted: int = 0
    updated: int = 0
    deleted: int = 0
    touched: set[str] = field(default_factory=set)
    metadata_touched: set[str] = field(default_factory=set)
    metadata_after: dict[str, Metadata | None] = field(default_factory=dict)
    snapshot_requested: bool = False

    def merge(self, other: ApplyResult) -> None:
        """Add ``other`` (what the events after this result's did)."""
        self.upserted += other.upserted
        self.updated += other.updated
        self.deleted += other.deleted
        self.touched |= other.touched
        self.metadata_touched |= other.metadata_touched
        # A record changed again later is known only if the later change
        # says what it stored.
        for record_id in other.touched | other.metadata_touched:
            if record_id not in other.metadata_after:
                self.metadata_after.pop(record_id, None)
        self.metadata_after.update(other.metadata_after)
        self.snapshot_requested |= other.snapshot_requested


class KnownIds:
    """Which record ids a collection holds, followed through a batch without
    asking ChromaDB: the ids held before it, plus those upserted since,
    minus those deleted since.

    The consumer's working copy knows its ids before a batch (they are the
    keys of its record hashes, which reproduced the live digest), so a label
    run can check which words exist in memory instead of with a ``get`` of
    every id, which took 18 % of a label batch (bench/README.md).
    """

    def __init__(self, before: Container[str]) -> None:
        # ``before`` is read, never copied: it must not change while this
        # object is in use (the runner refreshes its record hashes only
        # after the batch's last event).
        self._before = before
        self._added: set[str] = set()
        self._removed: set[str] = set()

    def __contains__(self, record_id: object) -> bool:
        if record_id in self._added:
            return True
        return record_id not in self._removed and record_id in self._before

    def upserted(self, ids: Iterable[str]) -> None:
        """``ids`` are stored now."""
        added = set(ids)
        self._added |= added
        self._removed -= added

    def deleted(self, ids: Iterable[str]) -> None:
        """``ids`` are gone now."""
        removed = set(ids)
        self._removed |= removed
        self._added -= removed

    @property
    def removed(self) -> frozenset[str]:
        """Every id reported deleted. A delete that fails part-way and is
        retried finds only the ids still stored, so its result's ``touched``
        lacks those the first attempt removed; these include them."""
        return frozenset(self._removed)


@dataclass(frozen=True)
class ApplyContext:
    """What applying needs besides the collection. ``known``, when given,
    must hold exactly the collection's ids, and ``receipts`` its records by
    receipt; the apply functions report every change to both."""

    objects: ObjectStore
    scratch_dir: Path
    delta_limits: DeltaLimits = field(default_factory=DeltaLimits)
    known: KnownIds | None = None
    receipts: ReceiptIndex | None = None


def apply_event(
    collection: ChromaCollection, envelope: Envelope, context: ApplyContext
) -> ApplyResult:
    """Apply one event to an open collection."""
    payload = envelope.payload
    match payload:
        case DeltaMerge():
            return apply_delta(collection, envelope, payload, context)
        case MetadataUpdate():
            return apply_metadata_run(collection, [envelope], context.receipts)
        case LabelUpdate():
            return apply_label_run(
                collection, [envelope], context.known, context.receipts
            )
        case RecordsDelete():
            return apply_delete(collection, payload, context.known, context.receipts)
        case SnapshotRequest():
            return ApplyResult(snapshot_requested=True)
        case _:
            return ApplyResult()


def apply_delta(
    collection: ChromaCollection,
    envelope: Envelope,
    payload: DeltaMerge,
    context: ApplyContext,
) -> ApplyResult:
    """Upsert every record of the delta."""
    result = ApplyResult()
    context.scratch_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"delta-{envelope.seq}-"
    with tempfile.TemporaryDirectory(dir=context.scratch_dir, prefix=prefix) as tmp:
        delta_dir = fetch_delta(
            context.objects, payload, Path(tmp) / "delta", context.delta_limits
        )
        for records in iter_delta_records(delta_dir):
            page = RecordPage(
                ids=records.ids,
                embeddings=records.embeddings,
                documents=list(records.documents),
                metadatas=list(records.metadatas),
            )
            collection.upsert(page)
            if context.known is not None:
                context.known.upserted(page.ids)
            if context.receipts is not None:
                context.receipts.upserted(page.ids, page.metadatas)
            result.upserted += len(page)
            result.touched.update(page.ids)
    if result.upserted != payload.records:
        log.warning(
            "delta_count_mismatch",
            collection=envelope.collection,
            seq=envelope.seq,
            key=payload.key,
            announced=payload.records,
            found=result.upserted,
        )
    return result


def apply_metadata_run(
    collection: ChromaCollection,
    envelopes: Sequence[Envelope],
    receipts: ReceiptIndex | None = None,
) -> ApplyResult:
    """Apply consecutive ``metadata_update`` events (a single one is a run
    of one) with one lookup and one update per page, with the result of
    applying them one by one.

    That holds because metadata updates neither add nor remove records (so
    one lookup of the run's receipts serves every event), and ChromaDB's
    update merges keys: applying ``{a: 1}`` then ``{a: None, b: 2}`` equals
    applying their merge ``{a: None, b: 2}``. A filtered ``get`` costs about
    0.2 s per event at 70k records (bench/updates.py); this costs one.

    The lookup reads each record's metadata, so the metadata stored after
    the update is known here: the stored keys with the changes merged in.
    It is reported in ``metadata_after`` for records whose changes hold no
    float (ChromaDB may store a float with a changed last digit, DESIGN
    section 6), which spares re-reading them to refresh the record hashes:
    a third of a metadata batch at 70k records.

    With ``receipts`` (the consumer's index), the records and their stored
    metadata come from memory instead of ChromaDB; records whose metadata
    the index does not know exactly are left out of ``metadata_after``.
    """
    payloads: list[MetadataUpdate] = []
    for envelope in envelopes:
        if not isinstance(envelope.payload, MetadataUpdate):
            raise TypeError(f"seq {envelope.seq} is not a metadata_update")
        payloads.append(envelope.payload)
    members: Mapping[ReceiptKey, Sequence[tuple[str, Metadata | None]]]
    keys = sorted({(p.image_id, p.receipt_id) for p in payloads})
    if receipts is None:
        members = collection.records_by_receipt(keys)
    else:
        members = receipts.records_of(collection, keys)

    stored: dict[str, Metadata | None] = {}
    merged: dict[str, dict[str, Any]] = {}
    updated = 0
    for payload in payloads:
        records = members.get((payload.image_id, payload.receipt_id), [])
        updated += len(records)
        for record_id, metadata in records:
            stored[record_id] = metadata
            merged.setdefault(record_id, {}).update(payload.changes)
    if receipts is not None:
        # Before updating: an update that fails part-way leaves them unknown.
        receipts.changed(merged)
    collection.update_each(list(merged), list(merged.values()))
    after = {
        record_id: _merged(before, changes)
        for record_id, changes in merged.items()
        if (before := stored[record_id]) is not None
        and not any(isinstance(value, float) for value in changes.values())
    }
    if receipts is not None:
        receipts.stored(after)
    return ApplyResult(
        updated=updated, metadata_touched=set(merged), metadata_after=after
    )


def _merged(stored: Metadata, changes: Mapping[str, Any]) -> Metadata | None:
    """``stored`` after ChromaDB's ``update`` with ``changes`` (None removes a
    key); None for no keys at all, as ChromaDB reads it back."""
    result = dict(stored)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result or None


def apply_label_run(
    collection: ChromaCollection,
    envelopes: Sequence[Envelope],
    known: KnownIds | None = None,
    receipts: ReceiptIndex | None = None,
) -> ApplyResult:
    """Apply consecutive ``label_update`` events with one existence check and
    one update, with the result of applying them one by one. The check asks
    ``known`` when given, else ChromaDB.

    That holds because a label update replaces the word's whole label state
    (so per word only the last one counts) and label updates neither add nor
    remove records (so which words exist cannot change within the run). One
    ChromaDB call per event would cost 10-20 ms each; labelling agents send
    labels by the thousand. With ``receipts`` (the consumer's index, once
    built), the metadata stored after the update is reported in
    ``metadata_after`` for the words whose stored metadata it knew.
    """
    labels: list[tuple[Envelope, str, LabelUpdate]] = []
    for envelope in envelopes:
        payload = envelope.payload
        if not isinstance(payload, LabelUpdate):
            raise TypeError(f"seq {envelope.seq} is not a label_update")
        labels.append((envelope, _word_of(payload), payload))
    latest = {word: payload for _, word, payload in labels}

    if known is None:
        present = collection.existing(list(latest))
    else:
        present = {word for word in latest if word in known}
    missing = [(envelope, word) for envelope, word, _ in labels if word not in present]
    for envelope, word in missing:
        log.warning(
            "label_target_missing",
            collection=envelope.collection,
            seq=envelope.seq,
            id=word,
        )
    words = [word for word in latest if word in present]
    changes = [label_metadata(latest[word]) for word in words]
    stored: dict[str, Metadata | None] = {}
    if receipts is not None:
        stored = receipts.known_metadata(words)
        receipts.changed(words)
    collection.update_each(words, changes)
    # Label values are strings, stored exactly: no read-back needed where
    # the index knew the stored metadata.
    after = {
        word: _merged(stored[word] or {}, change)
        for word, change in zip(words, changes, strict=True)
        if word in stored
    }
    if receipts is not None:
        receipts.stored(after)
    return ApplyResult(
        updated=len(labels) - len(missing),
        metadata_touched=set(words),
        metadata_after=after,
    )


def _word_of(payload: LabelUpdate) -> str:
    return word_id_of(
        payload.image_id, payload.receipt_id, payload.line_id, payload.word_id
    )


def apply_delete(
    collection: ChromaCollection,
    payload: RecordsDelete,
    known: KnownIds | None = None,
    receipts: ReceiptIndex | None = None,
) -> ApplyResult:
    """Delete a receipt's, a line's or a word's records."""
    where = record_filter(
        payload.image_id, payload.receipt_id, payload.line_id, payload.word_id
    )
    ids = collection.ids_where(where)
    if known is not None:
        # Before deleting: a delete that fails part-way is retried with a new
        # lookup, which no longer finds the ids already gone.
        known.deleted(ids)
    if receipts is not None:
        receipts.removed(ids)
    collection.delete(ids)
    return ApplyResult(deleted=len(ids), touched=set(ids))


def record_filter(
    image_id: str,
    receipt_id: int,
    line_id: int | None = None,
    word_id: int | None = None,
) -> dict[str, Any]:
    """A ChromaDB ``where`` matching the records below a receipt, a line or
    a word (a line's filter matches its words too: they carry its line_id)."""
    terms: list[dict[str, Any]] = [
        {"image_id": {"$eq": image_id}},
        {"receipt_id": {"$eq": receipt_id}},
    ]
    if line_id is not None:
        terms.append({"line_id": {"$eq": line_id}})
    if word_id is not None:
        terms.append({"word_id": {"$eq": word_id}})
    return {"$and": terms}
