"""The content digest of a collection (DESIGN section 9).

ChromaDB's index files are not deterministic, so versions are compared by a
digest of their records instead of their bytes. The digest in force
(format 2) is::

    body hash   = sha256( float32 embedding bytes | document )
    record hash = sha256( id | body hash | metadata )
    digest      = "v2:" + hex sha256( record hashes, ordered by id )

Each variable-length field is length-prefixed (8 bytes, big-endian) so that
no two records hash the same by shifting bytes between fields; a missing
document hashes differently from an empty one; metadata is canonical JSON
(sorted keys, compact separators) and a record without metadata hashes like
one with ``{}``. Embeddings are hashed as little-endian float32, the type
ChromaDB stores.

Format 1, a bare hex digest with ``record hash = sha256( id | embedding |
document | metadata )``, is what versions and snapshots recorded before
format 2 carry. A digest names its own format, so a recorded digest is
always checked by computing the digest of the same format
(:func:`digest_of_collection`); nothing recorded ever needs rewriting.

Only the 32-byte body and record hashes are kept in memory, never the
embeddings. :class:`RecordHashes` can also be kept between batches and
refreshed for the records a batch touched, which is what makes a digest per
batch affordable on a large collection: a full scan of 70k x 1536-d records
reads about 430 MB through ChromaDB. The body hash is what lets a label or
metadata update be refreshed from its metadata alone: reading 24k records'
embeddings back after a metadata batch at 1536-d took longer than ChromaDB's
update itself (bench/README.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np

from pipeline.chroma import ChromaCollection, Metadata, RecordPage, open_collection
from pipeline.files import copy_tree_writable
from pipeline.receipt_index import ReceiptIndex

#: The digest format new versions record.
DIGEST_FORMAT = 2
_PREFIXES = {1: "", 2: "v2:"}
_FILE_MAGIC = b"chroma-journal record hashes 2\n"
_HASH_SIZE = 32


@dataclass(frozen=True)
class Digest:
    """A collection's content digest (its format named in ``hexdigest``) and
    how many records it covers."""

    hexdigest: str
    count: int


def digest_format(recorded: str) -> int:
    """The format of a recorded digest; ValueError for none known."""
    if recorded.startswith(_PREFIXES[2]):
        return 2
    if len(recorded) == 64:
        return 1
    raise ValueError(f"not a content digest: {recorded!r}")


def canonical_json(metadata: Mapping[str, object] | None) -> str:
    """The metadata as canonical JSON (sorted keys, compact, UTF-8)."""
    return json.dumps(
        dict(metadata or {}),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def _field(value: bytes) -> bytes:
    return struct.pack(">Q", len(value)) + value


def _vector_bytes(embedding: np.ndarray) -> bytes:
    return np.ascontiguousarray(embedding, dtype="<f4").tobytes()


def _text_bytes(document: str | None) -> bytes:
    return b"\x00" if document is None else b"\x01" + document.encode()


def body_hash(embedding: np.ndarray, document: str | None) -> bytes:
    """The 32-byte hash of a record's embedding and document."""
    digest = hashlib.sha256(_field(_vector_bytes(embedding)))
    digest.update(_field(_text_bytes(document)))
    return digest.digest()


def combined_hash(
    record_id: str, body: bytes, metadata: Mapping[str, object] | None
) -> bytes:
    """The 32-byte record hash from its id, body hash and metadata."""
    digest = hashlib.sha256(_field(record_id.encode()))
    digest.update(body)
    digest.update(_field(canonical_json(metadata).encode()))
    return digest.digest()


def record_hash(
    record_id: str,
    embedding: np.ndarray,
    document: str | None,
    metadata: Mapping[str, object] | None,
) -> bytes:
    """The 32-byte hash of one record."""
    return combined_hash(record_id, body_hash(embedding, document), metadata)


def record_hash_v1(
    record_id: str,
    embedding: np.ndarray,
    document: str | None,
    metadata: Mapping[str, object] | None,
) -> bytes:
    """The 32-byte hash of one record in digest format 1."""
    digest = hashlib.sha256()
    for field in (
        record_id.encode(),
        _vector_bytes(embedding),
        _text_bytes(document),
        canonical_json(metadata).encode(),
    ):
        digest.update(_field(field))
    return digest.digest()


def _digest_of(ordered_hashes: Iterable[bytes], count: int, fmt: int) -> Digest:
    hexdigest = hashlib.sha256(b"".join(ordered_hashes)).hexdigest()
    return Digest(_PREFIXES[fmt] + hexdigest, count)


class RecordHashes:
    """Record hashes (format 2) by id, from which the digest is computed."""

    def __init__(
        self,
        hashes: dict[str, bytes] | None = None,
        bodies: dict[str, bytes] | None = None,
    ) -> None:
        self._hashes: dict[str, bytes] = dict(hashes or {})
        self._bodies: dict[str, bytes] = dict(bodies or {})
        if self._hashes.keys() != self._bodies.keys():
            raise ValueError("record hashes and body hashes name different ids")
        # The ids in digest order, kept while no id is added or removed: a
        # batch of label or metadata updates then costs no sort at all.
        self._order: list[str] | None = None
        #: The records by receipt, kept with these hashes by the consumer
        #: (built on its first metadata update; see pipeline.receipt_index).
        #: Every record this object reads or drops is reported to it (the
        #: apply functions report the ``metadata_after`` they compute).
        self.receipts = ReceiptIndex()

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._hashes

    def add(self, page: RecordPage) -> None:
        """Hash (or re-hash) the records of ``page``."""
        for index, record_id in enumerate(page.ids):
            if record_id not in self._hashes:
                self._order = None
            body = body_hash(page.embeddings[index], page.documents[index])
            self._bodies[record_id] = body
            self._hashes[record_id] = combined_hash(
                record_id, body, page.metadatas[index]
            )
        if self.receipts.built:
            self.receipts.read(dict(zip(page.ids, page.metadatas, strict=True)))

    def refresh(
        self,
        collection: ChromaCollection,
        ids: Iterable[str],
        metadata_only: Iterable[str] = (),
        metadata_after: Mapping[str, Metadata | None] | None = None,
    ) -> None:
        """Re-read ``ids`` from the collection: stored ones are re-hashed,
        missing ones are dropped. Of the ids in ``metadata_only`` and not in
        ``ids``, only the metadata is read: the caller vouches that their
        embeddings and documents did not change since they were hashed.
        Those in ``metadata_after`` are not read at all: the caller vouches
        that they are stored with exactly that metadata."""
        wanted = set(ids)
        partial = set(metadata_only) - wanted
        stored: set[str] = set()
        for page in collection.records(sorted(wanted)):
            self.add(page)
            stored.update(page.ids)
        unknown: list[str] = []
        known = metadata_after or {}
        for record_id in partial & known.keys():
            body = self._bodies.get(record_id)
            if body is not None:
                metadata = known[record_id]
                self._hashes[record_id] = combined_hash(record_id, body, metadata)
                stored.add(record_id)
        read: dict[str, Metadata | None] = {}
        partial -= stored
        for record_id, metadata in collection.metadatas(sorted(partial)):
            stored.add(record_id)
            body = self._bodies.get(record_id)
            if body is None:
                unknown.append(record_id)
            else:
                self._hashes[record_id] = combined_hash(record_id, body, metadata)
                read[record_id] = metadata
        self.receipts.read(read)
        for page in collection.records(unknown):
            self.add(page)
        gone = [i for i in wanted | partial if i not in stored and i in self._hashes]
        for record_id in gone:
            del self._hashes[record_id]
            del self._bodies[record_id]
        self.receipts.removed(gone)
        if gone:
            self._order = None

    def ids(self) -> list[str]:
        """Every record id, sorted."""
        return list(self._sorted_ids())

    def digest(self) -> Digest:
        """The digest over every record, ordered by id (format 2)."""
        ordered = map(self._hashes.__getitem__, self._sorted_ids())
        return _digest_of(ordered, len(self._hashes), DIGEST_FORMAT)

    def _sorted_ids(self) -> list[str]:
        if self._order is None:
            self._order = sorted(self._hashes)
        return self._order

    @classmethod
    def scan(cls, collection: ChromaCollection) -> Self:
        """Hash every record of an open collection, a page at a time."""
        hashes = cls()
        for page in collection.pages():
            hashes.add(page)
        return hashes

    def save(self, path: Path) -> None:
        """Write to ``path`` atomically and durably, with a checksum over the
        whole file (the body hashes do not enter the digest, so the digest
        alone would not reveal a damaged one)."""
        parts = [_FILE_MAGIC, struct.pack(">Q", len(self._hashes))]
        for record_id, value in self._hashes.items():
            encoded = record_id.encode()
            parts += [struct.pack(">I", len(encoded)), encoded, value]
            parts.append(self._bodies[record_id])
        data = b"".join(parts)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
        with os.fdopen(fd, "wb") as out:
            out.write(data + hashlib.sha256(data).digest())
            out.flush()
            os.fsync(out.fileno())
        Path(name).replace(path)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read a file written by :meth:`save`; ValueError when malformed,
        damaged or of another format (the caller then scans)."""
        data = path.read_bytes()
        if not data.startswith(_FILE_MAGIC):
            raise ValueError(f"{path} is not a record hash file of this format")
        body, checksum = data[:-_HASH_SIZE], data[-_HASH_SIZE:]
        if hashlib.sha256(body).digest() != checksum:
            raise ValueError(f"{path} is truncated or damaged (checksum)")
        try:
            return cls._parse(path, body)
        except struct.error as error:  # a length field cut short
            raise ValueError(f"{path} is truncated: {error}") from error

    @classmethod
    def _parse(cls, path: Path, data: bytes) -> Self:
        offset = len(_FILE_MAGIC)
        (count,) = struct.unpack_from(">Q", data, offset)
        offset += 8
        hashes: dict[str, bytes] = {}
        bodies: dict[str, bytes] = {}
        for _ in range(count):
            (length,) = struct.unpack_from(">I", data, offset)
            offset += 4
            record_id = data[offset : offset + length].decode()
            offset += length
            hashes[record_id] = data[offset : offset + _HASH_SIZE]
            offset += _HASH_SIZE
            bodies[record_id] = data[offset : offset + _HASH_SIZE]
            offset += _HASH_SIZE
        if offset != len(data) or any(
            len(v) != _HASH_SIZE for v in (*hashes.values(), *bodies.values())
        ):
            raise ValueError(f"{path} is truncated or has trailing bytes")
        return cls(hashes, bodies)


def digest_of_collection(
    collection: ChromaCollection, fmt: int = DIGEST_FORMAT
) -> Digest:
    """The digest of an open collection in format ``fmt``, by a full scan."""
    if fmt == DIGEST_FORMAT:
        return RecordHashes.scan(collection).digest()
    if fmt != 1:
        raise ValueError(f"unknown digest format {fmt}")
    hashes: dict[str, bytes] = {}
    for page in collection.pages():
        for index, record_id in enumerate(page.ids):
            hashes[record_id] = record_hash_v1(
                record_id,
                page.embeddings[index],
                page.documents[index],
                page.metadatas[index],
            )
    return _digest_of(map(hashes.__getitem__, sorted(hashes)), len(hashes), 1)


def digest_like(collection: ChromaCollection, recorded: str) -> Digest:
    """The digest of an open collection in the format of ``recorded``, to
    compare with it."""
    return digest_of_collection(collection, digest_format(recorded))


def digest_of_path(
    path: Path,
    collection_name: str,
    *,
    scratch_dir: Path | None = None,
    fmt: int = DIGEST_FORMAT,
) -> Digest:
    """The digest of a collection stored at ``path``.

    Opening a ChromaDB directory writes to its SQLite file, so this opens a
    private copy in a temporary directory (under ``scratch_dir`` when given)
    and never the directory itself; a published version stays untouched.
    """
    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix="digest-") as tmp:
        copy = Path(tmp) / "copy"
        copy_tree_writable(path, copy)
        (copy / "MANIFEST.json").unlink(missing_ok=True)
        with open_collection(copy, collection_name, space=None, create=False) as col:
            return digest_of_collection(col, fmt)
