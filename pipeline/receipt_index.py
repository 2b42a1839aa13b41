"""Which records belong to each receipt, and their stored metadata, kept in
memory by the consumer's working copy.

A metadata update names a receipt, not record ids, so applying one needs
the receipt's records and, to hash the result without reading it back,
their stored metadata. Asking ChromaDB for them (``image_id $in ...`` with
metadata) took 31-39 % of a 1000-event metadata batch at 70k records
(bench/README.md). This index answers from memory instead.

It is built on first use by one metadata scan of the collection, so a
consumer that never sees a metadata update never pays for it. From then on
it must follow every change to the collection, which happens in two places:

- while a batch is applied, the apply functions report what they do:
  upserts (a record may move to another receipt: ChromaDB's upsert replaces
  the identity keys the delta names), deletes, and metadata changes whose
  result is not known exactly (those records' metadata is then "unknown"
  until read back);
- after the batch, :class:`pipeline.digest.RecordHashes` reports the exact
  stored metadata of every record it re-hashed (read back or known), and
  every record it dropped.

Membership is always exact: the identity keys change only by upsert and
delete, both reported, and metadata updates cannot change them
(:data:`journal.events.IDENTITY_KEYS`). Only metadata values can be
unknown, and an unknown value is never guessed: the caller reads it back.

The index lives and dies with the record hashes it belongs to, so a batch
that fails (its working copy discarded) takes the index with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pipeline.chroma import ChromaCollection, Metadata

#: (image_id, receipt_id): what a metadata update names.
ReceiptKey = tuple[str, int]
_IDENTITY = ("image_id", "receipt_id")


def receipt_key(metadata: Mapping[str, object] | None) -> ReceiptKey | None:
    """The receipt a record belongs to by its metadata; None for none.

    The same rule as :meth:`ChromaCollection.records_by_receipt`: a string
    ``image_id`` (ChromaDB's ``$in`` of strings matches no other type) and
    an integer ``receipt_id``.
    """
    if not metadata:
        return None
    image_id, receipt_id = metadata.get("image_id"), metadata.get("receipt_id")
    if isinstance(image_id, str) and isinstance(receipt_id, int):
        return image_id, receipt_id
    return None


class ReceiptIndex:
    """Records by receipt, with each record's stored metadata when known.

    Until :meth:`records_of` first builds it, the index holds nothing and
    every report is ignored: the scan that builds it reads the collection
    as it is then.
    """

    def __init__(self) -> None:
        self._built = False
        self._members: dict[ReceiptKey, set[str]] = {}
        self._key_of: dict[str, ReceiptKey] = {}
        # The identity keys each record holds (of those with any), which an
        # upsert that names only one of them keeps the other of.
        self._identity: dict[str, dict[str, object]] = {}
        # Stored metadata by record id; absent means not known exactly.
        self._metadata: dict[str, Metadata | None] = {}

    @property
    def built(self) -> bool:
        """Whether the index holds the collection (after the first use)."""
        return self._built

    def __len__(self) -> int:
        return len(self._key_of)

    def records_of(
        self, collection: ChromaCollection, keys: Iterable[ReceiptKey]
    ) -> dict[ReceiptKey, list[tuple[str, Metadata | None]]]:
        """Each receipt's record ids with their stored metadata (None where
        not known exactly), built from ``collection`` on first use."""
        if not self._built:
            self._members, self._key_of, self._identity = {}, {}, {}
            self._metadata = {}
            for record_id, metadata in collection.all_metadatas():
                self._place(record_id, metadata)
                self._metadata[record_id] = metadata
            self._built = True
        found: dict[ReceiptKey, list[tuple[str, Metadata | None]]] = {}
        for key in keys:
            members = self._members.get(key)
            if members:
                found[key] = [(i, self._metadata.get(i)) for i in sorted(members)]
        return found

    def known_metadata(self, ids: Iterable[str]) -> dict[str, Metadata | None]:
        """The stored metadata of those of ``ids`` known exactly (none before
        the index is built: this never builds it)."""
        return {i: self._metadata[i] for i in ids if i in self._metadata}

    # -- reports ------------------------------------------------------------

    def stored(self, known: Mapping[str, Metadata | None]) -> None:
        """These records are stored with exactly this metadata."""
        if not self._built:
            return
        for record_id, metadata in known.items():
            self._place(record_id, metadata)
            self._metadata[record_id] = metadata

    def upserted(
        self, ids: Sequence[str], metadatas: Sequence[Metadata | None]
    ) -> None:
        """These records were upserted with this metadata, which ChromaDB
        merged into what was stored: their identity keys are the upsert's
        where it names them, and their metadata is unknown until read back."""
        if not self._built:
            return
        for record_id, given in zip(ids, metadatas, strict=True):
            merged = dict(self._identity.get(record_id, {}))
            merged.update(given or {})
            self._place(record_id, merged)
            self._metadata.pop(record_id, None)

    def changed(self, ids: Iterable[str]) -> None:
        """These records' metadata changed (identity keys excepted) to
        something not known here."""
        if not self._built:
            return
        for record_id in ids:
            self._metadata.pop(record_id, None)

    def removed(self, ids: Iterable[str]) -> None:
        """These records are gone."""
        if not self._built:
            return
        for record_id in ids:
            self._unplace(record_id)
            self._identity.pop(record_id, None)
            self._metadata.pop(record_id, None)

    # -- membership -----------------------------------------------------------

    def _place(self, record_id: str, metadata: Mapping[str, object] | None) -> None:
        identity = {k: metadata[k] for k in _IDENTITY if metadata and k in metadata}
        if identity:
            self._identity[record_id] = identity
        else:
            self._identity.pop(record_id, None)
        key = receipt_key(metadata)
        if self._key_of.get(record_id) == key:
            return
        self._unplace(record_id)
        if key is not None:
            self._key_of[record_id] = key
            self._members.setdefault(key, set()).add(record_id)

    def _unplace(self, record_id: str) -> None:
        key = self._key_of.pop(record_id, None)
        if key is None:
            return
        members = self._members[key]
        members.discard(record_id)
        if not members:
            del self._members[key]
