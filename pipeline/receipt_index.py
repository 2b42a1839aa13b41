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

A record is filed under the receipts whose ``record_filter`` ChromaDB
would match it with (:func:`pipeline.chroma.receipt_id_matches`: a stored
1.0 belongs to receipt 1, a stored True to none), the same rule the lookup
without the index follows, so that a consumer with the index, one without
it and a replay update the same records.

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

from pipeline.chroma import ChromaCollection, Metadata, ReceiptKey

_IDENTITY = ("image_id", "receipt_id")
#: Where a record is filed: its image_id, and its receipt_id tagged with its
#: type, since ChromaDB compares an int receipt_id with a stored int exactly
#: and with a stored float as a float (pipeline.chroma.receipt_id_matches),
#: and Python would confuse 1, 1.0 and True.
_Place = tuple[str, str, int | float]
#: Sharing more distinct values than this (and than twice the records)
#: starts a new table, so that values churned through are not kept.
_SHARED_FLOOR = 100_000


def _place_of(metadata: Mapping[str, object] | None) -> _Place | None:
    """Where a record with this metadata is filed; None when no metadata
    update can name it (image_id not a string, receipt_id not an int or a
    float)."""
    if not metadata:
        return None
    image_id, receipt_id = metadata.get("image_id"), metadata.get("receipt_id")
    if not isinstance(image_id, str):
        return None
    if type(receipt_id) is int:
        return image_id, "i", receipt_id
    if type(receipt_id) is float:
        return image_id, "f", receipt_id
    return None


def _places(key: ReceiptKey) -> tuple[_Place, _Place]:
    """Where the records a metadata update of ``key`` matches are filed."""
    image_id, receipt_id = key
    return (image_id, "i", receipt_id), (image_id, "f", float(receipt_id))


class ReceiptIndex:
    """Records by receipt, with each record's stored metadata when known.

    Until :meth:`records_of` first builds it, the index holds nothing and
    every report is ignored: the scan that builds it reads the collection
    as it is then.
    """

    def __init__(self) -> None:
        self._built = False
        self._members: dict[_Place, set[str]] = {}
        self._place_of: dict[str, _Place] = {}
        # Stored metadata by record id; absent means not known exactly.
        self._metadata: dict[str, Metadata | None] = {}
        # One object per distinct key, value and receipt key: ChromaDB hands
        # out a new string for every key of every record, and 70k records'
        # metadata took 137 MB without sharing them.
        self._shared: dict[object, object] = {}
        self._share_limit = _SHARED_FLOOR

    @property
    def built(self) -> bool:
        """Whether the index holds the collection (after the first use)."""
        return self._built

    def __len__(self) -> int:
        """Records filed under a receipt."""
        return len(self._place_of)

    def records_of(
        self, collection: ChromaCollection, keys: Iterable[ReceiptKey]
    ) -> dict[ReceiptKey, list[tuple[str, Metadata | None]]]:
        """Each receipt's record ids with their stored metadata (None where
        not known exactly), built from ``collection`` on first use."""
        if not self._built:
            self._forget()
            try:
                for record_id, metadata in collection.all_metadatas():
                    self._know(record_id, metadata)
            except BaseException:
                self._forget()
                raise
            self._built = True
            self._share_limit = max(_SHARED_FLOOR, 2 * len(self._metadata))
        found: dict[ReceiptKey, list[tuple[str, Metadata | None]]] = {}
        for key in keys:
            members: set[str] = set()
            for place in _places(key):
                members |= self._members.get(place, set())
            if members:
                found[key] = [(i, self._metadata.get(i)) for i in sorted(members)]
        return found

    def known_metadata(self, ids: Iterable[str]) -> dict[str, Metadata | None]:
        """The stored metadata of those of ``ids`` known exactly (none before
        the index is built: this never builds it)."""
        if not self._built:
            return {}
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
        self._members, self._place_of, self._metadata = {}, {}, {}
        self._shared = {}
        self._share_limit = _SHARED_FLOOR

    def _know(self, record_id: str, metadata: Metadata | None) -> None:
        """Keep metadata read from ChromaDB, sharing its keys and values."""
        if metadata is not None:
            if len(self._shared) > self._share_limit:
                self._shared = {}
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
        place = self._place_of.get(record_id)
        if place is not None:
            return {"image_id": place[0], "receipt_id": place[2]}
        if record_id in self._metadata:
            stored = self._metadata[record_id] or {}
            return {k: stored[k] for k in _IDENTITY if k in stored}
        return None

    # -- membership -----------------------------------------------------------

    def _place(self, record_id: str, metadata: Mapping[str, object] | None) -> None:
        place = _place_of(metadata)
        if self._place_of.get(record_id) == place:
            return
        self._unplace(record_id)
        if place is not None:
            place = self._shared.setdefault(place, place)  # type: ignore[assignment]
            self._place_of[record_id] = place
            self._members.setdefault(place, set()).add(record_id)

    def _unplace(self, record_id: str) -> None:
        place = self._place_of.pop(record_id, None)
        if place is None:
            return
        members = self._members[place]
        members.discard(record_id)
        if not members:
            del self._members[place]
