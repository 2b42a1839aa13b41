"""The content digest of a collection (DESIGN section 9).

ChromaDB's index files are not deterministic, so versions are compared by a
digest of their records instead of their bytes::

    record hash = sha256( id | float32 embedding bytes | document | metadata )
    digest      = sha256( record hashes, ordered by id )

Each field is length-prefixed (8 bytes, big-endian) so that no two records
hash the same by shifting bytes between fields; a missing document hashes
differently from an empty one; metadata is canonical JSON (sorted keys,
compact separators) and a record without metadata hashes like one with
``{}``. Embeddings are hashed as little-endian float32, the type ChromaDB
stores.

Only the 32-byte record hashes are kept in memory, never all embeddings.
:class:`RecordHashes` can also be kept between batches and refreshed for the
records a batch touched, which is what makes a digest per batch affordable
on a large collection: a full scan of 70k x 1536-d records reads about
430 MB through ChromaDB.
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

from pipeline.chroma import ChromaCollection, RecordPage, open_collection
from pipeline.files import copy_tree_writable

_FILE_MAGIC = b"chroma-journal record hashes 1\n"
_HASH_SIZE = 32


@dataclass(frozen=True)
class Digest:
    """A collection's content digest and how many records it covers."""

    hexdigest: str
    count: int


def canonical_json(metadata: Mapping[str, object] | None) -> str:
    """The metadata as canonical JSON (sorted keys, compact, UTF-8)."""
    return json.dumps(
        dict(metadata or {}),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def record_hash(
    record_id: str,
    embedding: np.ndarray,
    document: str | None,
    metadata: Mapping[str, object] | None,
) -> bytes:
    """The 32-byte hash of one record."""
    digest = hashlib.sha256()
    vector = np.ascontiguousarray(embedding, dtype="<f4").tobytes()
    text = b"\x00" if document is None else b"\x01" + document.encode()
    for field in (record_id.encode(), vector, text, canonical_json(metadata).encode()):
        digest.update(struct.pack(">Q", len(field)))
        digest.update(field)
    return digest.digest()


class RecordHashes:
    """Record hashes by id, from which the digest is computed."""

    def __init__(self, hashes: dict[str, bytes] | None = None) -> None:
        self._hashes: dict[str, bytes] = dict(hashes or {})
        # The ids in digest order, kept while no id is added or removed: a
        # batch of label or metadata updates then costs no sort at all.
        self._order: list[str] | None = None

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._hashes

    def add(self, page: RecordPage) -> None:
        """Hash (or re-hash) the records of ``page``."""
        for index, record_id in enumerate(page.ids):
            if record_id not in self._hashes:
                self._order = None
            self._hashes[record_id] = record_hash(
                record_id,
                page.embeddings[index],
                page.documents[index],
                page.metadatas[index],
            )

    def refresh(self, collection: ChromaCollection, ids: Iterable[str]) -> None:
        """Re-read ``ids`` from the collection: stored ones are re-hashed,
        missing ones are dropped."""
        wanted = sorted(set(ids))
        stored: set[str] = set()
        for page in collection.records(wanted):
            self.add(page)
            stored.update(page.ids)
        gone = [i for i in wanted if i not in stored and i in self._hashes]
        for record_id in gone:
            del self._hashes[record_id]
        if gone:
            self._order = None

    def ids(self) -> list[str]:
        """Every record id, sorted."""
        return list(self._sorted_ids())

    def digest(self) -> Digest:
        """The digest over every record, ordered by id."""
        joined = b"".join(map(self._hashes.__getitem__, self._sorted_ids()))
        return Digest(hashlib.sha256(joined).hexdigest(), len(self._hashes))

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
        """Write to ``path`` atomically and durably."""
        parts = [_FILE_MAGIC, struct.pack(">Q", len(self._hashes))]
        for record_id, value in self._hashes.items():
            encoded = record_id.encode()
            parts += [struct.pack(">I", len(encoded)), encoded, value]
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
        with os.fdopen(fd, "wb") as out:
            out.write(b"".join(parts))
            out.flush()
            os.fsync(out.fileno())
        Path(name).replace(path)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read a file written by :meth:`save`; ValueError when malformed."""
        data = path.read_bytes()
        try:
            return cls._parse(path, data)
        except struct.error as error:  # a length field cut short
            raise ValueError(f"{path} is truncated: {error}") from error

    @classmethod
    def _parse(cls, path: Path, data: bytes) -> Self:
        if not data.startswith(_FILE_MAGIC):
            raise ValueError(f"{path} is not a record hash file")
        offset = len(_FILE_MAGIC)
        (count,) = struct.unpack_from(">Q", data, offset)
        offset += 8
        hashes: dict[str, bytes] = {}
        for _ in range(count):
            (length,) = struct.unpack_from(">I", data, offset)
            offset += 4
            record_id = data[offset : offset + length].decode()
            offset += length
            hashes[record_id] = data[offset : offset + _HASH_SIZE]
            offset += _HASH_SIZE
        if offset != len(data) or any(len(v) != _HASH_SIZE for v in hashes.values()):
            raise ValueError(f"{path} is truncated or has trailing bytes")
        return cls(hashes)


def digest_of_collection(collection: ChromaCollection) -> Digest:
    """The digest of an open collection, by a full scan."""
    return RecordHashes.scan(collection).digest()


def digest_of_path(
    path: Path, collection_name: str, *, scratch_dir: Path | None = None
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
            return digest_of_collection(col)
