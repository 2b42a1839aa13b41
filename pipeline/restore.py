"""Restoring a snapshot to local disk, checked before anything uses it.

::

    MANIFEST.json ─▶ download every file into a private directory
      ─▶ size and sha256 of each against the manifest
      ─▶ open a copy with ChromaDB: count equals the manifest's, one query
      ─▶ rename the download to ``dest``

A missing, truncated or altered object raises :class:`SnapshotCorrupt`
naming its key, and nothing is left at ``dest``. The check opens a *copy*
because opening a ChromaDB directory writes to its ``chroma.sqlite3``; the
restored files stay byte for byte what the manifest lists. A snapshot
without a manifest (an upload that never finished) cannot be restored.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from journal.errors import ObjectNotFound
from journal.objectstore import ObjectStore
from pipeline.chroma import ChromaCollection, chroma_errors, open_collection
from pipeline.digest import DIGEST_FORMAT, Digest, digest_format, digest_of_collection
from pipeline.errors import ChromaOperationError
from pipeline.files import Hashed, copy_tree_writable, remove_tree, sha256_file
from pipeline.snapshot_format import (
    SnapshotCorrupt,
    SnapshotManifest,
    SnapshotNotFound,
    file_key,
    manifest_key,
    read_manifest,
    read_pointer,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CollectionCheck:
    """What opening a collection directory found."""

    count: int
    digest: Digest | None


def restore_snapshot(
    objects: ObjectStore,
    collection: str,
    dest: Path,
    *,
    version: str | None = None,
    space: str | None = None,
    scratch_dir: Path | None = None,
    check_digest: bool = False,
) -> SnapshotManifest:
    """Restore a snapshot (default: the one ``latest.json`` names) into the
    new or empty directory ``dest`` and return its manifest.

    ``space`` is the distance space the collection must have (None: any);
    ``check_digest`` also recomputes the content digest, a full read.
    """
    version = version or latest_version(objects, collection)
    snap = read_manifest(objects, collection, version)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(f"restore target {dest} is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    download = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".restore-{version}-"))
    try:
        download_files(objects, snap, download)
        downloaded = time.monotonic()
        key = manifest_key(collection, version)
        check = check_collection(
            download,
            collection,
            key=key,
            space=space,
            scratch_dir=scratch_dir,
            with_digest=check_digest,
            fmt=digest_format(snap.digest),
        )
        _compare(snap, check, key)
        if dest.exists():
            dest.rmdir()
        download.rename(dest)
    except BaseException:
        remove_tree(download)
        raise
    _log_restored(snap, started, downloaded)
    return snap


def latest_version(objects: ObjectStore, collection: str) -> str:
    """The version ``latest.json`` names; :class:`SnapshotNotFound` if none."""
    current = read_pointer(objects, collection)
    if current is None:
        raise SnapshotNotFound(collection, None, "no latest.json")
    return current.pointer.version


def download_files(objects: ObjectStore, snap: SnapshotManifest, target: Path) -> None:
    """Download every file ``snap`` lists into ``target``, checking each."""
    for name, entry in sorted(snap.files.items()):
        key = file_key(snap.collection, snap.version, name)
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            objects.get_file(key, path)
        except ObjectNotFound as error:
            raise SnapshotCorrupt(key, "listed in the manifest but missing") from error
        found = sha256_file(path)
        if found != Hashed(entry.sha256, entry.size):
            raise SnapshotCorrupt(
                key,
                f"{found.size} bytes with sha256 {found.sha256}, but the manifest "
                f"says {entry.size} bytes with sha256 {entry.sha256}",
            )


def check_collection(
    path: Path,
    collection: str,
    *,
    key: str,
    space: str | None = None,
    scratch_dir: Path | None = None,
    with_digest: bool = False,
    fmt: int = DIGEST_FORMAT,
) -> CollectionCheck:
    """Open a private copy of the ChromaDB directory ``path``, count its
    records and run one query (and compute its digest, in format ``fmt``,
    when asked);
    :class:`SnapshotCorrupt` naming ``key`` if ChromaDB cannot."""
    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix="check-") as tmp:
        copy = Path(tmp) / "copy"
        copy_tree_writable(path, copy)
        try:
            with open_collection(copy, collection, space=space, create=False) as opened:
                count = opened.count()
                _query_one(opened, key)
                digest = digest_of_collection(opened, fmt) if with_digest else None
        except ChromaOperationError as error:
            raise SnapshotCorrupt(
                key, f"does not open with ChromaDB: {error}"
            ) from error
    return CollectionCheck(count, digest)


def _query_one(opened: ChromaCollection, key: str) -> None:
    """Query with a stored embedding: the index must find at least itself."""
    page = next(opened.pages(page_size=1), None)
    if page is None:
        return  # an empty collection has nothing to find
    with chroma_errors("query", opened.path):
        result = opened.raw.query(query_embeddings=page.embeddings[:1], n_results=1)
    if not result["ids"] or not result["ids"][0]:
        raise SnapshotCorrupt(key, "a query for a stored embedding found nothing")


def _compare(snap: SnapshotManifest, check: CollectionCheck, key: str) -> None:
    if check.count != snap.record_count:
        raise SnapshotCorrupt(
            key, f"holds {check.count} records, the manifest says {snap.record_count}"
        )
    if check.digest is not None and check.digest.hexdigest != snap.digest:
        raise SnapshotCorrupt(
            key, f"content digest {check.digest.hexdigest}, manifest says {snap.digest}"
        )


def _log_restored(snap: SnapshotManifest, started: float, downloaded: float) -> None:
    finished = time.monotonic()
    download_seconds = downloaded - started
    log.info(
        "snapshot_restored",
        collection=snap.collection,
        version=snap.version,
        applied_seq=snap.applied_seq,
        files=len(snap.files),
        bytes=snap.total_bytes,
        download_seconds=round(download_seconds, 4),
        check_seconds=round(finished - downloaded, 4),
        download_mb_per_s=round(snap.total_bytes / 1e6 / download_seconds, 2)
        if download_seconds
        else None,
    )
