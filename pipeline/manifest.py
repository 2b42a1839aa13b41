"""The manifest of a collection version (``MANIFEST.json``).

A version directory exists only once its manifest is written: publishing
writes it after every other file, and readers, restore and garbage
collection trust nothing in a directory without one.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from journal.events import CollectionName
from pipeline.errors import VersionCorrupt
from pipeline.files import WRITABLE_DIR, Hashed, copy_hashed

MANIFEST_NAME = "MANIFEST.json"


def _safe_relpath(value: str) -> str:
    path = PurePosixPath(value)
    if (
        not value
        or path.is_absolute()
        or "\\" in value
        or any(part in ("", ".", "..") for part in value.split("/"))
        or value == MANIFEST_NAME
    ):
        raise ValueError(f"unsafe file name in manifest: {value!r}")
    return value


RelPath = Annotated[str, AfterValidator(_safe_relpath)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
#: A content digest, which names its format (:mod:`pipeline.digest`): bare
#: hex for format 1, ``v2:`` and hex for format 2.
ContentDigest = Annotated[str, Field(pattern=r"^(v2:)?[0-9a-f]{64}$")]


class FileEntry(BaseModel):
    """One file of a version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: Sha256
    size: int = Field(ge=0)


class Manifest(BaseModel):
    """What a version holds and how it came to be."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    collection: CollectionName
    version: str = Field(min_length=1)
    parent: str | None
    applied_seq: int = Field(ge=0)
    first_seq: int | None = Field(
        default=None, ge=1, description="first seq applied by this version"
    )
    last_seq: int | None = Field(
        default=None, ge=1, description="last seq applied by this version"
    )
    files: dict[RelPath, FileEntry]
    digest: ContentDigest
    record_count: int = Field(ge=0)
    fencing_token: int = Field(ge=0)
    writer: str
    created_at: datetime

    @property
    def total_bytes(self) -> int:
        """Size of the version's files (the manifest excluded)."""
        return sum(entry.size for entry in self.files.values())

    def write(self, directory: Path) -> Path:
        """Write ``MANIFEST.json`` into ``directory`` and fsync it."""
        path = directory / MANIFEST_NAME
        data = self.model_dump_json(indent=2).encode()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        with os.fdopen(os.open(path, flags, 0o644), "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        return path

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """Read the manifest of a version directory."""
        path = directory / MANIFEST_NAME
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError as error:
            raise VersionCorrupt(f"{directory} has no {MANIFEST_NAME}") from error
        except ValueError as error:
            raise VersionCorrupt(f"{path} is not a valid manifest: {error}") from error


def new_bytes(manifest: Manifest, parent: Manifest | None) -> int:
    """Bytes a version wrote itself rather than sharing with its parent."""
    shared = parent.files if parent is not None else {}
    return sum(
        entry.size
        for name, entry in manifest.files.items()
        if shared.get(name) != entry
    )


def copy_version(
    source: Path, manifest: Manifest, target: Path, *, keep_mtime: bool = False
) -> dict[str, Hashed]:
    """Copy a version's files (not its manifest) from ``source`` into the
    directory ``target`` with writable modes, checking each against the
    manifest; :class:`VersionCorrupt` on a mismatch. ``keep_mtime`` gives
    the copies their source's mtime."""
    copied: dict[str, Hashed] = {}
    for name, entry in sorted(manifest.files.items()):
        original, copy = source / name, target / name
        copy.parent.mkdir(parents=True, exist_ok=True, mode=WRITABLE_DIR)
        hashed = copy_hashed(original, copy, durable=False)
        if (hashed.sha256, hashed.size) != (entry.sha256, entry.size):
            raise VersionCorrupt(
                f"{original} has sha256 {hashed.sha256}, but the manifest of "
                f"{manifest.collection} {manifest.version} says {entry.sha256}"
            )
        if keep_mtime:
            mtime = original.stat().st_mtime_ns
            os.utime(copy, ns=(mtime, mtime))
        copied[name] = hashed
    return copied
