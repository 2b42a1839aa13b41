"""Importing the previous system's snapshot as a collection's base snapshot.

The previous system kept, per collection::

    {collection}/snapshot/latest-pointer.txt                 body: a version id
    {collection}/snapshot/timestamped/{version}/snapshot.tar.gz
        or the ChromaDB files as a plain tree under that prefix

The import downloads that snapshot (an archive is unpacked with the same
checks as a delta: no absolute paths, ``..``, links or devices), opens a
copy with ChromaDB (count and one query) and computes its content digest,
then uploads it in the new layout with ``applied_seq`` 0 and
``origin="legacy"``, creates ``latest.json`` (only if absent) and appends
``snapshot_recorded`` and ``latest_moved``. Replay can then start from it:
every journal event applies on top of the legacy state.

Running it again after it completed changes nothing (the pointer names the
imported snapshot, the journal records are keyed by its version). A
collection that already has snapshots is refused. Limitation: the consumer
does not yet seed a collection's first live version from a base snapshot;
``replay rebuild --from latest --promote`` does that.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import structlog

from journal.base import Clock, Journal, utc_now
from journal.deltas import CHROMA_FILE, DeltaLimits, fetch_delta
from journal.errors import DeltaError, ObjectNotFound
from journal.events import DeltaMerge, validate_collection_name
from journal.local_store import LocalObjectStore
from journal.objectstore import CasOutcome, ObjectStore, check_key
from pipeline.files import regular_files, sha256_file
from pipeline.manifest import FileEntry
from pipeline.restore import check_collection
from pipeline.snapshot_format import (
    SnapshotError,
    SnapshotManifest,
    read_manifest,
    read_pointer,
)
from pipeline.snapshot_steps import (
    move_pointer,
    record_snapshot,
    snapshot_location,
    upload_snapshot,
)
from pipeline.store import new_version_id

log = structlog.get_logger(__name__)

LEGACY_POINTER = "snapshot/latest-pointer.txt"
LEGACY_VERSIONS = "snapshot/timestamped"
LEGACY_ARCHIVE = "snapshot.tar.gz"


class LegacyImportError(SnapshotError):
    """The previous system's snapshot could not be imported."""

    def __init__(self, collection: str, key: str, reason: str) -> None:
        super().__init__(f"import of {collection} from {key!r} failed: {reason}")
        self.collection = collection
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class LegacyImport:
    """The base snapshot an import produced (or found from an earlier run)."""

    manifest: SnapshotManifest
    legacy_version: str
    already_imported: bool


def import_legacy(
    source: ObjectStore,
    collection: str,
    *,
    target: ObjectStore,
    journal: Journal,
    workdir: Path,
    legacy_version: str | None = None,
    space: str | None = None,
    clock: Clock = utc_now,
    producer: str = "import-legacy",
) -> LegacyImport:
    """Import ``collection``'s legacy snapshot from ``source`` (default: the
    version its ``latest-pointer.txt`` names) as the base snapshot in
    ``target``. ``space`` is the distance space the collection must have."""
    validate_collection_name(collection)
    legacy_version = legacy_version or read_legacy_pointer(source, collection)
    prefix = legacy_prefix(collection, legacy_version)
    location = f"{source.url}/{prefix}"
    done = _earlier_import(target, collection, location)
    if done is not None:
        _record(journal, target, done, producer)
        return LegacyImport(done, legacy_version, already_imported=True)
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="legacy-") as tmp:
        chroma_dir = fetch_legacy(source, collection, prefix, Path(tmp))
        snap = _describe(chroma_dir, collection, location, space, clock, Path(tmp))
        upload_snapshot(target, chroma_dir, snap, clock=clock)
    if move_pointer(target, snap, None, clock()) is CasOutcome.CONFLICT:
        raise LegacyImportError(
            collection, prefix, "a snapshot pointer appeared during the import"
        )
    _record(journal, target, snap, producer)
    log.info(
        "legacy_imported",
        collection=collection,
        legacy_version=legacy_version,
        version=snap.version,
        records=snap.record_count,
        bytes=snap.total_bytes,
        digest=snap.digest,
    )
    return LegacyImport(snap, legacy_version, already_imported=False)


def legacy_prefix(collection: str, legacy_version: str) -> str:
    """``{collection}/snapshot/timestamped/{version}/``."""
    if "/" in legacy_version:
        raise LegacyImportError(collection, legacy_version, "not a version id")
    return check_key(f"{collection}/{LEGACY_VERSIONS}/{legacy_version}") + "/"


def read_legacy_pointer(source: ObjectStore, collection: str) -> str:
    """The version id in ``{collection}/snapshot/latest-pointer.txt``."""
    key = f"{collection}/{LEGACY_POINTER}"
    try:
        version = source.get_bytes(key).decode("utf-8").strip()
    except ObjectNotFound as error:
        raise LegacyImportError(collection, key, "no legacy pointer") from error
    except UnicodeDecodeError as error:
        raise LegacyImportError(collection, key, "pointer is not text") from error
    if not version or "/" in version or "\n" in version:
        raise LegacyImportError(collection, key, f"not a version id: {version!r}")
    return version


def fetch_legacy(source: ObjectStore, collection: str, prefix: str, work: Path) -> Path:
    """Download the legacy snapshot under ``prefix`` into ``work``; return
    the directory holding ``chroma.sqlite3``."""
    archive_key = prefix + LEGACY_ARCHIVE
    if source.exists(archive_key):
        return _fetch_archive(source, collection, archive_key, work)
    return _fetch_tree(source, collection, prefix, work / "tree")


def _fetch_archive(source: ObjectStore, collection: str, key: str, work: Path) -> Path:
    """Unpack through :func:`journal.deltas.fetch_delta`, which checks every
    member before it writes anything; its sha256 check is given the
    archive's own hash, since the legacy layout records none."""
    local = LocalObjectStore(work / "archive")
    archive = local.root / "legacy" / LEGACY_ARCHIVE
    source.get_file(key, archive)
    payload = DeltaMerge(
        key=f"legacy/{LEGACY_ARCHIVE}", sha256=sha256_file(archive).sha256, records=0
    )
    try:
        return fetch_delta(local, payload, work / "unpacked", DeltaLimits())
    except DeltaError as error:
        raise LegacyImportError(collection, key, str(error)) from error


def _fetch_tree(source: ObjectStore, collection: str, prefix: str, dest: Path) -> Path:
    objects = source.list(prefix)
    for info in objects:
        relpath = check_key(info.key[len(prefix) :])
        path = dest / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        source.get_file(info.key, path)
    found = sorted(dest.rglob(CHROMA_FILE), key=lambda path: len(path.parts))
    if not found:
        raise LegacyImportError(
            collection, prefix, f"neither {LEGACY_ARCHIVE} nor {CHROMA_FILE} found"
        )
    return found[0].parent


def _describe(
    chroma_dir: Path,
    collection: str,
    location: str,
    space: str | None,
    clock: Clock,
    scratch: Path,
) -> SnapshotManifest:
    """Check that the snapshot opens, and build its manifest."""
    check = check_collection(
        chroma_dir,
        collection,
        key=location,
        space=space,
        scratch_dir=scratch,
        with_digest=True,
    )
    assert check.digest is not None  # asked for with_digest
    files = {}
    for relpath in regular_files(chroma_dir):
        hashed = sha256_file(chroma_dir / relpath)
        files[relpath.as_posix()] = FileEntry(sha256=hashed.sha256, size=hashed.size)
    now = clock()
    return SnapshotManifest(
        collection=collection,
        version=new_version_id(now),
        applied_seq=0,
        parent=None,
        files=files,
        digest=check.digest.hexdigest,
        record_count=check.count,
        created_at=now,
        origin="legacy",
        source=location,
    )


def _earlier_import(
    target: ObjectStore, collection: str, location: str
) -> SnapshotManifest | None:
    """The snapshot an earlier run imported from ``location``; None when the
    collection has no snapshot yet; refuses any other existing snapshot."""
    current = read_pointer(target, collection)
    if current is None:
        return None
    snap = read_manifest(target, collection, current.pointer.version)
    if snap.origin == "legacy" and snap.source == location:
        return snap
    raise LegacyImportError(
        collection,
        location,
        f"the collection already has snapshots (latest {current.pointer.version}); "
        "a legacy snapshot can only be the first",
    )


def _record(
    journal: Journal, target: ObjectStore, snap: SnapshotManifest, producer: str
) -> None:
    record_snapshot(
        journal,
        snap,
        location=snapshot_location(target, snap),
        moved=True,
        producer=producer,
    )
