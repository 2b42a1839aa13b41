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
- after the batch, :class:`pipeline.digest.RecordHashes` reports the
  stored metadata of every record it read back to re-hash, and every
  record it dropped.

Membership is always exact: the identity keys change only by upsert and
delete, both reported, and metadata updates cannot change them
(:data:`journal.events.IDENTITY_KEYS`). Only metadata values can be
unknown, and an unknown value is never guessed: the caller reads it back.
The one upsert whose effect on membership cannot be known here (it names
one identity key of a record whose other one is unknown) makes the index
forget everything and scan again on its next use.

The index lives and dies with the record hashes it belongs to, so a batch
that fails (its working copy discarded) takes the index with it. It costs
about 54 MB at 70k word records of 13 metadata keys (equal keys and values
are stored once), and its first scan 5.6 s there.
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
        # Stored metadata by record id; absent means not known exactly.
        self._metadata: dict[str, Metadata | None] = {}
        # One object per distinct key, value and receipt key: ChromaDB hands
        # out a new string for every key of every record, and 70k records'
        # metadata took 137 MB without sharing them.
        self._shared: dict[object, object] = {}

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
            self._forget()
            for record_id, metadata in collection.all_metadatas():
                self._know(record_id, metadata)
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
        """These records are stored with exactly this metadata, computed
        from what the index knew (its keys and values are the index's)."""
        if not self._built:
            return
        for record_id, metadata in known.items():
            self._place(record_id, metadata)
            self._metadata[record_id] = metadata

    def read(self, found: Mapping[str, Metadata | None]) -> None:
        """These records are stored with this metadata, as ChromaDB just
        returned it."""
        if not self._built:
            return
        for record_id, metadata in found.items():
            self._know(record_id, metadata)

    def upserted(
        self, ids: Sequence[str], metadatas: Sequence[Metadata | None]
    ) -> None:
        """These records were upserted with this metadata, which ChromaDB
        merged into what was stored: their identity keys are the upsert's
        where it names them, and their metadata is unknown until read back.

        An upsert that names one identity key of a record whose other one
        is not known here (not a member of a receipt, metadata unknown)
        leaves its receipt unknown: the index then forgets everything and
        is built again on its next use.
        """
        if not self._built:
            return
        for record_id, given in zip(ids, metadatas, strict=True):
            identity: dict[str, object] = {
                k: v for k, v in (given or {}).items() if k in _IDENTITY
            }
            if len(identity) == 1:
                before = self._identity_of(record_id)
                if before is None:
                    self._forget()
                    return
                identity = {**before, **identity}
            if identity:
                self._place(record_id, identity)
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
            self._metadata.pop(record_id, None)

    def _forget(self) -> None:
        self._built = False
        self._members, self._key_of, self._metadata, self._shared = {}, {}, {}, {}

    def _know(self, record_id: str, metadata: Metadata | None) -> None:
        """Keep metadata read from ChromaDB, sharing its keys and values."""
        if metadata is not None:
            share = self._shared.setdefault
            # Values are shared by type and value: True == 1 == 1.0 in Python,
            # and a bool must stay a bool.
            metadata = {
                share(k, k): share((type(v), v), v)  # type: ignore[misc]
                for k, v in metadata.items()
            }
        self._place(record_id, metadata)
        self._metadata[record_id] = metadata

    def _identity_of(self, record_id: str) -> dict[str, object] | None:
        """The identity keys ``record_id`` holds, when known."""
        key = self._key_of.get(record_id)
        if key is not None:
            return {"image_id": key[0], "receipt_id": key[1]}
        if record_id in self._metadata:
            stored = self._metadata[record_id] or {}
            return {k: stored[k] for k in _IDENTITY if k in stored}
        return None

    # -- membership -----------------------------------------------------------

    def _place(self, record_id: str, metadata: Mapping[str, object] | None) -> None:
        key = receipt_key(metadata)
        if self._key_of.get(record_id) == key:
            return
        self._unplace(record_id)
        if key is not None:
            shared = (type(key[1]), key)  # (img, True) == (img, 1): keep each
            key = self._shared.setdefault(shared, key)  # type: ignore[assignment]
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
