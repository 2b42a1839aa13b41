"""Deltas: batches of records shipped as an archived ChromaDB directory.

A delta is a ChromaDB persistent directory holding one collection named
``delta``, packed as ``.tar.gz`` and stored under
``<collection>/deltas/<delta_id>/delta.tar.gz``. The ``delta_merge`` event
that references it carries its sha256, and :func:`fetch_delta` checks that
digest and every archive member before it writes a single file.

ChromaDB facts relied on here (chromadb 1.5): one add takes at most 5461
records and a ``get`` with metadata fails past about 32k rows, so both are
paged at 5000; ``get`` returns float64, so embeddings are cast back to
float32; an empty metadata dict is refused, so it is stored as None.
Float metadata values do not always survive exactly: ChromaDB returns some
of them off in the last digits (90.33333333333333 as 90.33333333333331), so
compare collections built by the same code rather than against the input.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import structlog
from ulid import ULID

from journal.errors import DeltaError, DeltaIntegrityError, UnsafeArchiveError
from journal.events import DeltaMerge, validate_collection_name
from journal.objectstore import ObjectStore, check_key

log = structlog.get_logger(__name__)

MetadataValue = str | int | float | bool

#: Name of the one ChromaDB collection inside a delta directory.
DELTA_COLLECTION = "delta"
#: Records per ChromaDB call (below its 5461 add limit and 32k get limit).
PAGE_SIZE = 5000
#: The SQLite file at the root of every ChromaDB directory.
CHROMA_FILE = "chroma.sqlite3"
_HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True, eq=False)
class DeltaRecords:
    """Records of a delta: parallel lists plus an ``(n, dim)`` float32 array.

    Equality is identity: an array has no single truth value to compare.
    """

    ids: list[str]
    embeddings: np.ndarray[Any, np.dtype[np.float32]]
    documents: list[str]
    metadatas: list[dict[str, MetadataValue]]

    def __post_init__(self) -> None:
        self._check_lengths()
        self._check_ids()
        self._check_embeddings()
        self._check_metadatas()

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dimension(self) -> int:
        """Length of each embedding."""
        return int(self.embeddings.shape[1])

    def _check_lengths(self) -> None:
        lengths = {
            "ids": len(self.ids),
            "embeddings": len(self.embeddings),
            "documents": len(self.documents),
            "metadatas": len(self.metadatas),
        }
        if len(set(lengths.values())) != 1:
            raise DeltaError(f"delta records have unequal lengths: {lengths}")

    def _check_ids(self) -> None:
        if not all(isinstance(one, str) and one for one in self.ids):
            raise DeltaError("delta record ids must be non-empty strings")
        if len(set(self.ids)) != len(self.ids):
            repeated = sorted({one for one in self.ids if self.ids.count(one) > 1})
            raise DeltaError(f"delta record ids repeat: {repeated[:10]}")

    def _check_embeddings(self) -> None:
        array = self.embeddings
        if not isinstance(array, np.ndarray) or array.ndim != 2:
            raise DeltaError("delta embeddings must be a 2-D numpy array (n, dim)")
        if array.dtype != np.float32:
            raise DeltaError(f"delta embeddings must be float32, got {array.dtype}")
        if len(array) and array.shape[1] < 1:
            raise DeltaError("delta embeddings must have at least one dimension")
        if not np.isfinite(array).all():
            rows = np.flatnonzero(~np.isfinite(array).all(axis=1))
            raise DeltaError(
                f"delta embeddings hold NaN or infinity at rows {rows[:10].tolist()}"
            )

    def _check_metadatas(self) -> None:
        for index, metadata in enumerate(self.metadatas):
            if not isinstance(metadata, dict) or not all(
                isinstance(key, str) and _is_scalar(value)
                for key, value in metadata.items()
            ):
                raise DeltaError(
                    f"delta metadata at row {index} must map strings to "
                    f"str, int, float or bool, got {metadata!r}"
                )


@dataclass(frozen=True)
class DeltaLimits:
    """Bounds on what an archive may unpack to (decompression bombs)."""

    max_bytes: int = 4 * 1024**3
    max_members: int = 10_000


def delta_key(collection: str, delta_id: str) -> str:
    """The object key of a delta's archive."""
    return f"{collection}/deltas/{delta_id}/delta.tar.gz"


def write_delta(
    store: ObjectStore,
    collection: str,
    records: DeltaRecords,
    *,
    delta_id: str | None = None,
    workdir: Path | None = None,
) -> DeltaMerge:
    """Build, archive and upload a delta; return its ``delta_merge`` payload.

    ``workdir`` is where the temporary ChromaDB directory is built.
    """
    validate_collection_name(collection)
    delta_id = delta_id or str(ULID())
    if "/" in delta_id:
        raise DeltaError(f"delta id {delta_id!r} may not contain '/'")
    key = check_key(delta_key(collection, delta_id))

    with tempfile.TemporaryDirectory(dir=workdir, prefix="delta-") as tmp:
        chroma_dir = Path(tmp) / "chroma"
        _build_chroma_dir(chroma_dir, records)
        archive = Path(tmp) / "delta.tar.gz"
        _pack(chroma_dir, archive)
        digest = _sha256_of(archive)
        store.put_file(key, archive)
        size = archive.stat().st_size

    log.info("delta_written", collection=collection, key=key, records=len(records))
    log.debug("delta_archive", key=key, bytes=size, sha256=digest)
    return DeltaMerge(
        key=key,
        sha256=digest,
        records=len(records),
        dimension=records.dimension if len(records) else None,
    )


def fetch_delta(
    store: ObjectStore,
    payload: DeltaMerge,
    dest: Path,
    limits: DeltaLimits = DeltaLimits(),
) -> Path:
    """Download, verify and unpack a delta into ``dest``; return the directory
    that holds ``chroma.sqlite3``.

    ``dest`` must not exist or be empty. The sha256 is checked first, then
    every member; only when all pass is anything extracted. On any failure
    ``dest`` is left as it was found.
    """
    _check_empty(dest, payload.key)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".delta-") as tmp:
        archive = Path(tmp) / "delta.tar.gz"
        store.get_file(payload.key, archive)
        _verify_sha256(archive, payload)
        with _open_archive(archive, payload.key) as tar:
            members = _safe_members(tar, payload.key, limits)
            _extract(tar, members, dest, payload.key, limits)
    log.debug("delta_fetched", key=payload.key, members=len(members))
    return _chroma_dir_in(dest, payload.key)


def iter_delta_records(
    delta_dir: Path, page_size: int = PAGE_SIZE
) -> Iterator[DeltaRecords]:
    """The records of an unpacked delta, ``page_size`` at a time."""
    if not 1 <= page_size <= PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {PAGE_SIZE}")
    if not (delta_dir / CHROMA_FILE).is_file():
        raise DeltaError(f"{delta_dir} holds no {CHROMA_FILE}")
    client = _open_client(delta_dir)
    try:
        with _chroma_errors(delta_dir):
            collection = client.get_collection(DELTA_COLLECTION)
        offset = 0
        while True:
            with _chroma_errors(delta_dir):
                page = collection.get(
                    include=["embeddings", "documents", "metadatas"],
                    limit=page_size,
                    offset=offset,
                )
            if not page["ids"]:
                return
            yield _records_of(page)
            offset += len(page["ids"])
    finally:
        client.close()


# -- writing ------------------------------------------------------------------


def _build_chroma_dir(path: Path, records: DeltaRecords) -> None:
    path.mkdir(parents=True)
    client = _open_client(path)
    try:
        with _chroma_errors(path):
            # l2 stores the inserted float32 vectors unchanged; cosine would
            # normalise them (DESIGN, ChromaDB facts).
            collection = client.create_collection(
                DELTA_COLLECTION, metadata={"hnsw:space": "l2"}
            )
            for start in range(0, len(records), PAGE_SIZE):
                end = start + PAGE_SIZE
                collection.add(
                    ids=records.ids[start:end],
                    embeddings=records.embeddings[start:end],
                    documents=records.documents[start:end],
                    metadatas=[m or None for m in records.metadatas[start:end]],
                )
    finally:
        client.close()


def _pack(source: Path, archive: Path) -> None:
    """Archive the directory's contents with relative member names."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# -- fetching -----------------------------------------------------------------


def _check_empty(dest: Path, key: str) -> None:
    # Pre-existing files (a symlink especially) could redirect extraction.
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DeltaError(f"cannot unpack delta {key!r}: {dest} is not empty")


def _verify_sha256(archive: Path, payload: DeltaMerge) -> None:
    actual = _sha256_of(archive)
    if actual != payload.sha256:
        raise DeltaIntegrityError(payload.key, payload.sha256, actual)


def _safe_members(
    tar: tarfile.TarFile, key: str, limits: DeltaLimits
) -> list[tarfile.TarInfo]:
    """Every member, after checking each one; raise on the first bad one.

    Headers are read one by one so that a huge member count or declared
    size stops the scan before it is decompressed.
    """
    members: list[tarfile.TarInfo] = []
    declared = 0
    while (member := _next_member(tar, key)) is not None:
        if len(members) >= limits.max_members:
            raise UnsafeArchiveError(
                key, member.name, f"more than {limits.max_members} members"
            )
        _check_member(member, key)
        declared += member.size if member.isfile() else 0
        if declared > limits.max_bytes:
            raise UnsafeArchiveError(
                key, member.name, f"unpacks to more than {limits.max_bytes} bytes"
            )
        members.append(member)
    return members


def _next_member(tar: tarfile.TarFile, key: str) -> tarfile.TarInfo | None:
    with _archive_errors(key):
        return tar.next()


@contextmanager
def _open_archive(archive: Path, key: str) -> Iterator[tarfile.TarFile]:
    with _archive_errors(key), tarfile.open(archive, "r:gz") as tar:
        yield tar


@contextmanager
def _archive_errors(key: str) -> Iterator[None]:
    """The one place where a broken archive becomes a delta error."""
    try:
        yield
    except (tarfile.ReadError, tarfile.CompressionError, EOFError, zlib.error) as error:
        raise DeltaError(f"delta {key!r} is not a readable archive: {error}") from error


def _check_member(member: tarfile.TarInfo, key: str) -> None:
    reason = _member_problem(member)
    if reason is not None:
        raise UnsafeArchiveError(key, member.name, reason)


def _member_problem(member: tarfile.TarInfo) -> str | None:
    name = PurePosixPath(member.name)
    if member.name.startswith(("/", "\\")) or name.is_absolute():
        return "absolute path"
    if ".." in name.parts or "\\" in member.name:
        return "path leaves the target directory"
    if member.issym():
        return "symbolic link"
    if member.islnk():
        return "hard link"
    if member.ischr() or member.isblk() or member.isfifo():
        return "device or fifo"
    if not (member.isfile() or member.isdir()):
        return "not a regular file or directory"
    return None


def _extract(
    tar: tarfile.TarFile,
    members: list[tarfile.TarInfo],
    dest: Path,
    key: str,
    limits: DeltaLimits,
) -> None:
    """Extract checked members, counting the bytes actually written."""
    created = not dest.exists()
    written = 0
    try:
        for member in members:
            # The "data" filter re-checks paths and links (defence in depth).
            tar.extract(member, dest, filter="data")
            if member.isfile():
                written += (dest / member.name).stat().st_size
            if written > limits.max_bytes:
                raise UnsafeArchiveError(
                    key, member.name, f"wrote more than {limits.max_bytes} bytes"
                )
    except tarfile.FilterError as error:
        _remove(dest, created)
        raise UnsafeArchiveError(key, str(error.tarinfo.name), str(error)) from error
    except BaseException:
        _remove(dest, created)
        raise


def _remove(dest: Path, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _chroma_dir_in(dest: Path, key: str) -> Path:
    found = sorted(dest.rglob(CHROMA_FILE), key=lambda path: len(path.parts))
    if not found:
        raise DeltaError(f"delta {key!r} holds no {CHROMA_FILE}")
    return found[0].parent


# -- reading ------------------------------------------------------------------


def _records_of(page: Mapping[str, Any]) -> DeltaRecords:
    embeddings = np.asarray(page["embeddings"], dtype=np.float32)
    return DeltaRecords(
        ids=list(page["ids"]),
        embeddings=embeddings.reshape(len(page["ids"]), -1),
        documents=[doc or "" for doc in page["documents"]],
        metadatas=[dict(meta or {}) for meta in page["metadatas"]],
    )


def _open_client(path: Path) -> Any:
    """A ChromaDB client on the real path of ``path``.

    ChromaDB caches clients per path string, so two spellings of one
    directory would open two engines on the same files. It is imported
    here because loading it takes about a second, which commands that
    never touch a delta should not pay.
    """
    import chromadb
    from chromadb.config import Settings

    with _chroma_errors(path):
        return chromadb.PersistentClient(
            path=str(path.resolve()),
            settings=Settings(anonymized_telemetry=False),
        )


@contextmanager
def _chroma_errors(path: Path) -> Iterator[None]:
    """The one place where ChromaDB errors become delta errors."""
    try:
        yield
    except DeltaError:
        raise
    except Exception as error:
        raise DeltaError(
            f"ChromaDB failed on delta directory {path}: {error}"
        ) from error


def _is_scalar(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)
