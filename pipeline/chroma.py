"""The consumer's one door to ChromaDB.

Everything in ``pipeline/`` that reads or writes a ChromaDB directory goes
through this module, which keeps the rules DESIGN section 6 measured:

- open the *resolved real path*: clients are cached per path string, so two
  spellings of one directory would run two engines over the same files;
- always ``close()`` the client (reference counted), never
  ``clear_system_cache()``, which leaks and later breaks other clients;
- page every call: one write takes at most 5461 records and a ``get`` with
  metadata fails above about 32k rows;
- ``get`` returns float64: cast embeddings back to float32;
- translate ChromaDB's exceptions here, once, into
  :class:`~pipeline.errors.ChromaOperationError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.errors import (
    ChromaOperationError,
    CollectionConfigMismatch,
    PipelineError,
)

#: Records per ChromaDB call: below ``get_max_batch_size()`` (5461 in
#: ChromaDB 1.5) for writes and the ~32k rows a ``get`` with metadata takes.
PAGE_SIZE = 5000

MetadataValue = str | int | float | bool
Metadata = dict[str, MetadataValue]
Embeddings = npt.NDArray[np.float32]
#: (image_id, receipt_id): what a metadata update names.
ReceiptKey = tuple[str, int]


def receipt_id_matches(stored: object, receipt_id: int) -> bool:
    """Whether ChromaDB's ``{"receipt_id": {"$eq": receipt_id}}`` matches a
    stored value: an int equal to it, or a float equal to it once it is
    converted to a float (so 1.0 matches 1), never a bool (True does not
    match 1) or a string. Checked against chromadb 1.5.9."""
    if type(stored) is int:
        return stored == receipt_id
    if type(stored) is float:
        return stored == float(receipt_id)
    return False


@dataclass(frozen=True, eq=False)
class RecordPage:
    """Records as parallel lists, embeddings as an ``(n, dim)`` float32 array."""

    ids: list[str]
    embeddings: Embeddings
    documents: list[str | None]
    metadatas: list[Metadata | None]

    def __len__(self) -> int:
        return len(self.ids)


@contextmanager
def chroma_errors(operation: str, path: Path) -> Iterator[None]:
    """Translate any ChromaDB exception raised inside into
    :class:`ChromaOperationError` (the project's own errors pass through)."""
    try:
        yield
    except PipelineError:
        raise
    except Exception as error:
        cause = f"{type(error).__name__}: {error}"
        raise ChromaOperationError(operation, str(path), cause) from error


@contextmanager
def open_client(path: Path) -> Iterator[Any]:
    """A ChromaDB ``PersistentClient`` on the real path of ``path``, closed on
    exit whatever happens."""
    real = path.resolve()
    with chroma_errors("open", real):
        # Imported here: loading chromadb takes about a second, which
        # commands that never open a collection should not pay.
        import chromadb
        from chromadb.config import Settings

        client: Any = chromadb.PersistentClient(
            path=str(real), settings=Settings(anonymized_telemetry=False)
        )
    try:
        yield client
    finally:
        with chroma_errors("close", real):
            client.close()


@contextmanager
def open_collection(
    path: Path, name: str, *, space: str | None, create: bool = True
) -> Iterator[ChromaCollection]:
    """Open (or create, with ``{"hnsw:space": space}``) a collection.

    The stored distance space must equal ``space``; None accepts any (only
    with ``create=False``).
    """
    if create and space is None:
        raise ValueError("creating a collection needs its space")
    with open_client(path) as client:
        real = path.resolve()
        with chroma_errors("get_collection", real):
            if create:
                raw = client.get_or_create_collection(
                    name, metadata={"hnsw:space": space}, embedding_function=None
                )
            else:
                raw = client.get_collection(name, embedding_function=None)
        stored = (raw.metadata or {}).get("hnsw:space", "l2")
        if space is not None and stored != space:
            raise CollectionConfigMismatch(name, "hnsw:space", stored, space)
        yield ChromaCollection(raw, real)


class ChromaCollection:
    """One open collection, with paged and translated operations."""

    def __init__(self, raw: Any, path: Path) -> None:
        self.raw = raw
        self.path = path

    @property
    def name(self) -> str:
        """The collection's name."""
        return str(self.raw.name)

    def count(self) -> int:
        """Number of records."""
        with chroma_errors("count", self.path):
            return int(self.raw.count())

    def upsert(self, page: RecordPage) -> None:
        """Insert or update records (stored metadata keys that ``page`` does
        not name are kept: ChromaDB merges metadata on upsert)."""
        for start in range(0, len(page), PAGE_SIZE):
            end = start + PAGE_SIZE
            with chroma_errors("upsert", self.path):
                self.raw.upsert(
                    ids=page.ids[start:end],
                    embeddings=page.embeddings[start:end],
                    documents=page.documents[start:end],
                    # ChromaDB refuses an empty metadata dict.
                    metadatas=[m or None for m in page.metadatas[start:end]],
                )

    def update_metadatas(
        self, ids: Sequence[str], changes: Mapping[str, MetadataValue | None]
    ) -> None:
        """Apply the same metadata changes to every id; a None value removes
        the key (ChromaDB 1.5 semantics)."""
        self.update_each(ids, [changes] * len(ids))

    def update_each(
        self,
        ids: Sequence[str],
        changes: Sequence[Mapping[str, MetadataValue | None]],
    ) -> None:
        """Apply ``changes[i]`` to ``ids[i]`` (ids must not repeat)."""
        for start in range(0, len(ids), PAGE_SIZE):
            end = start + PAGE_SIZE
            with chroma_errors("update", self.path):
                self.raw.update(
                    ids=list(ids[start:end]),
                    metadatas=[dict(one) for one in changes[start:end]],
                )

    def delete(self, ids: Sequence[str]) -> None:
        """Delete records by id."""
        for start in range(0, len(ids), PAGE_SIZE):
            with chroma_errors("delete", self.path):
                self.raw.delete(ids=list(ids[start : start + PAGE_SIZE]))

    def _paged_get(
        self,
        include: list[str],
        where: Mapping[str, Any] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[Mapping[str, Any]]:
        """ChromaDB ``get`` results of every matching record, ``page_size``
        at a time (one unpaged ``get`` fails past about 32k records), never
        an empty one."""
        offset = 0
        while True:
            with chroma_errors("get", self.path):
                page = self.raw.get(
                    where=None if where is None else dict(where),
                    include=include,
                    limit=page_size,
                    offset=offset,
                )
            if page["ids"]:
                yield page
            offset += len(page["ids"])
            if len(page["ids"]) < page_size:
                return

    def ids_where(self, where: Mapping[str, Any]) -> list[str]:
        """Ids of every record whose metadata matches ``where``."""
        return [i for page in self._paged_get([], where) for i in page["ids"]]

    def records_by_receipt(
        self, keys: Iterable[ReceiptKey]
    ) -> dict[ReceiptKey, list[tuple[str, Metadata]]]:
        """Id and metadata of every record of the given receipts, the records
        a ``record_filter`` of each would match, found with one paged query
        of their images instead of one query per receipt."""
        wanted: dict[str, set[int]] = {}
        for image_id, receipt_id in keys:
            wanted.setdefault(image_id, set()).add(receipt_id)
        found: dict[ReceiptKey, list[tuple[str, Metadata]]] = {}
        where = {"image_id": {"$in": sorted(wanted)}}
        for page in self._paged_get(["metadatas"], where):
            for record_id, meta in zip(page["ids"], page["metadatas"], strict=True):
                image_id = meta["image_id"]
                for receipt_id in wanted[image_id]:
                    if receipt_id_matches(meta.get("receipt_id"), receipt_id):
                        found.setdefault((image_id, receipt_id), []).append(
                            (record_id, meta)
                        )
        return found

    def existing(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are stored."""
        present: set[str] = set()
        for start in range(0, len(ids), PAGE_SIZE):
            with chroma_errors("get", self.path):
                page = self.raw.get(
                    ids=list(ids[start : start + PAGE_SIZE]), include=[]
                )
            present.update(page["ids"])
        return present

    def records(self, ids: Sequence[str]) -> Iterator[RecordPage]:
        """The stored records among ``ids``, a page at a time."""
        for start in range(0, len(ids), PAGE_SIZE):
            with chroma_errors("get", self.path):
                page = self.raw.get(
                    ids=list(ids[start : start + PAGE_SIZE]),
                    include=["embeddings", "documents", "metadatas"],
                )
            if page["ids"]:
                yield _page_of(page)

    def metadatas(self, ids: Sequence[str]) -> Iterator[tuple[str, Metadata | None]]:
        """The metadata of the stored records among ``ids``, without reading
        their embeddings or documents."""
        for start in range(0, len(ids), PAGE_SIZE):
            with chroma_errors("get", self.path):
                page = self.raw.get(
                    ids=list(ids[start : start + PAGE_SIZE]), include=["metadatas"]
                )
            for record_id, metadata in zip(page["ids"], page["metadatas"], strict=True):
                yield record_id, dict(metadata) if metadata else None

    def all_metadatas(self) -> Iterator[tuple[str, Metadata | None]]:
        """Every record's id and metadata, without embeddings or documents."""
        for page in self._paged_get(["metadatas"]):
            for record_id, metadata in zip(page["ids"], page["metadatas"], strict=True):
                yield record_id, dict(metadata) if metadata else None

    def pages(self, page_size: int = PAGE_SIZE) -> Iterator[RecordPage]:
        """Every record, ``page_size`` at a time (in storage order)."""
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {PAGE_SIZE}")
        include = ["embeddings", "documents", "metadatas"]
        for page in self._paged_get(include, page_size=page_size):
            yield _page_of(page)


def _page_of(result: Mapping[str, Any]) -> RecordPage:
    ids = list(result["ids"])
    embeddings = np.asarray(result["embeddings"], dtype=np.float32)
    return RecordPage(
        ids=ids,
        embeddings=embeddings.reshape(len(ids), -1),
        documents=list(result["documents"]),
        metadatas=[dict(m) if m else None for m in result["metadatas"]],
    )
