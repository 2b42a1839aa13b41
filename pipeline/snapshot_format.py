"""Snapshots in the object store: their layout, documents and errors.

Layout (DESIGN section 7)::

    <collection>/snapshots/<version>/<file>...        the version's files
    <collection>/snapshots/<version>/UPLOADING.json   while uploading
    <collection>/snapshots/<version>/MANIFEST.json    written last
    <collection>/snapshots/latest.json                the pointer (CAS)

A snapshot exists only once its ``MANIFEST.json`` does: restore, listing and
retention's count ignore a prefix without one. ``UPLOADING.json`` holds the
time the upload started, which is how retention tells an upload in progress
from one that crashed (the version id's time says when the version was
published, not when its upload began).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from journal.aws_schema import SNAPSHOTS_PREFIX
from journal.errors import UnsafeObjectKey
from journal.events import CollectionName, validate_collection_name
from journal.objectstore import ObjectInfo, ObjectStore, check_key
from pipeline.errors import PipelineError
from pipeline.manifest import ContentDigest, FileEntry, RelPath

SNAPSHOT_MANIFEST = "MANIFEST.json"
UPLOAD_MARKER = "UPLOADING.json"
POINTER_NAME = "latest.json"

Origin = Literal["consumer", "legacy"]


# -- errors ---------------------------------------------------------------------


class SnapshotError(PipelineError):
    """A snapshot could not be taken, found or restored."""


class SnapshotNotFound(SnapshotError, LookupError):
    """No complete snapshot matches (no pointer, or no manifest)."""

    def __init__(self, collection: str, version: str | None, reason: str) -> None:
        what = f"snapshot {version}" if version else "latest snapshot"
        super().__init__(f"{collection}: {what} not found: {reason}")
        self.collection = collection
        self.version = version
        self.reason = reason


class SnapshotCorrupt(SnapshotError):
    """A snapshot object does not match its manifest, or does not open."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"snapshot object {key!r}: {reason}")
        self.key = key
        self.reason = reason


# -- keys -----------------------------------------------------------------------


def snapshots_prefix(collection: str) -> str:
    """``<collection>/snapshots/``: every snapshot and the pointer."""
    return f"{validate_collection_name(collection)}/{SNAPSHOTS_PREFIX}/"


def snapshot_prefix(collection: str, version: str) -> str:
    """``<collection>/snapshots/<version>/``."""
    if "/" in version or version in (POINTER_NAME, "", ".", ".."):
        raise UnsafeObjectKey(f"{version!r} is not a snapshot version id")
    return check_key(f"{snapshots_prefix(collection)}{version}") + "/"


def file_key(collection: str, version: str, relpath: str) -> str:
    """The key of one file of a snapshot."""
    return check_key(snapshot_prefix(collection, version) + relpath)


def manifest_key(collection: str, version: str) -> str:
    """The key of a snapshot's manifest."""
    return snapshot_prefix(collection, version) + SNAPSHOT_MANIFEST


def marker_key(collection: str, version: str) -> str:
    """The key of a snapshot's upload-in-progress marker."""
    return snapshot_prefix(collection, version) + UPLOAD_MARKER


def pointer_key(collection: str) -> str:
    """The key of the collection's latest pointer."""
    return snapshots_prefix(collection) + POINTER_NAME


# -- documents ------------------------------------------------------------------


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1

    def to_bytes(self) -> bytes:
        """The JSON stored in the object store."""
        return self.model_dump_json(indent=2).encode()


class SnapshotManifest(_Document):
    """What a snapshot holds: written after every file, so its presence
    means the snapshot is complete."""

    collection: CollectionName
    version: str = Field(min_length=1)
    applied_seq: int = Field(ge=0)
    parent: str | None = Field(description="the snapshot latest named before")
    files: dict[RelPath, FileEntry]
    digest: ContentDigest
    record_count: int = Field(ge=0)
    created_at: datetime
    origin: Origin = "consumer"
    source: str | None = Field(
        default=None, description="where a legacy snapshot was imported from"
    )

    @property
    def total_bytes(self) -> int:
        """Size of the snapshot's files (the manifest excluded)."""
        return sum(entry.size for entry in self.files.values())


class SnapshotPointer(_Document):
    """The body of ``latest.json``."""

    collection: CollectionName
    version: str = Field(min_length=1)
    applied_seq: int = Field(ge=0)
    digest: ContentDigest
    record_count: int = Field(ge=0)
    moved_at: datetime

    @classmethod
    def of(cls, manifest: SnapshotManifest, moved_at: datetime) -> SnapshotPointer:
        """The pointer that names ``manifest``'s snapshot."""
        return cls(
            collection=manifest.collection,
            version=manifest.version,
            applied_seq=manifest.applied_seq,
            digest=manifest.digest,
            record_count=manifest.record_count,
            moved_at=moved_at,
        )


class UploadMarker(_Document):
    """The body of ``UPLOADING.json``."""

    started_at: datetime


DocumentT = TypeVar("DocumentT", bound=_Document)


@dataclass(frozen=True)
class PointerState:
    """The pointer as read, with the ETag a conditional write compares."""

    pointer: SnapshotPointer
    etag: str


@dataclass(frozen=True)
class StoredSnapshot:
    """One snapshot prefix as listed: complete when its manifest exists."""

    version: str
    objects: tuple[ObjectInfo, ...]
    complete: bool

    @property
    def total_bytes(self) -> int:
        """Bytes stored under the prefix, manifest and marker included."""
        return sum(info.size for info in self.objects)


# -- reading --------------------------------------------------------------------


def read_pointer(objects: ObjectStore, collection: str) -> PointerState | None:
    """The latest pointer and its ETag, None before the first snapshot."""
    key = pointer_key(collection)
    stored = objects.read_versioned(key)
    if stored is None:
        return None
    return PointerState(_parse(SnapshotPointer, stored.data, key), stored.etag)


def read_manifest(
    objects: ObjectStore, collection: str, version: str
) -> SnapshotManifest:
    """A complete snapshot's manifest; :class:`SnapshotNotFound` when the
    snapshot has none (absent, or its upload never finished)."""
    key = manifest_key(collection, version)
    stored = objects.read_versioned(key)
    if stored is None:
        raise SnapshotNotFound(collection, version, f"no {key}")
    manifest = _parse(SnapshotManifest, stored.data, key)
    if (manifest.collection, manifest.version) != (collection, version):
        raise SnapshotCorrupt(key, f"names {manifest.collection} {manifest.version}")
    return manifest


def read_marker(
    objects: ObjectStore, collection: str, version: str
) -> UploadMarker | None:
    """The upload marker of a snapshot, None when absent or unreadable."""
    key = marker_key(collection, version)
    stored = objects.read_versioned(key)
    if stored is None:
        return None
    try:
        return UploadMarker.model_validate_json(stored.data)
    except ValidationError:
        return None


def list_snapshots(objects: ObjectStore, collection: str) -> list[StoredSnapshot]:
    """Every snapshot prefix of ``collection``, oldest version id first."""
    prefix = snapshots_prefix(collection)
    grouped: dict[str, list[ObjectInfo]] = defaultdict(list)
    for info in objects.list(prefix):
        version, slash, _ = info.key[len(prefix) :].partition("/")
        if slash:  # the pointer has no "/" after the prefix
            grouped[version].append(info)
    return [
        StoredSnapshot(
            version=version,
            objects=tuple(found),
            complete=any(i.key.endswith(f"/{SNAPSHOT_MANIFEST}") for i in found),
        )
        for version, found in sorted(grouped.items())
    ]


def _parse(model: type[DocumentT], data: bytes, key: str) -> DocumentT:
    try:
        return model.model_validate_json(data)
    except ValidationError as error:
        raise SnapshotCorrupt(key, f"not a valid {model.__name__}: {error}") from error
