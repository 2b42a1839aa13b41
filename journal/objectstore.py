"""The object store contract (deltas and snapshots), and its outcomes.

Keys are ``/``-separated relative paths such as ``lines/deltas/<id>/delta.tar.gz``.
Backends refuse keys that could escape their root.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from journal.errors import UnsafeObjectKey


def check_key(key: str) -> str:
    """Return ``key`` when it is a safe relative key, else raise."""
    path = PurePosixPath(key)
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(part in ("", ".", "..") for part in key.split("/"))
        or path.is_absolute()
    ):
        raise UnsafeObjectKey(
            f"object key {key!r} must be a relative path without '.', '..', "
            "empty parts or backslashes"
        )
    return key


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object."""

    key: str
    size: int


@dataclass(frozen=True)
class Versioned:
    """An object's bytes with the tag that a conditional write compares."""

    data: bytes
    etag: str


class CasOutcome(enum.Enum):
    """Result of a conditional write."""

    WRITTEN = "written"
    CONFLICT = "conflict"


class ObjectStore(abc.ABC):
    """Immutable blobs plus one kind of mutable object: compare-and-swap
    pointers."""

    url: str

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (replacing any object there)."""

    @abc.abstractmethod
    def put_file(self, key: str, path: Path) -> None:
        """Upload a local file."""

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; :class:`ObjectNotFound` when absent."""

    @abc.abstractmethod
    def get_file(self, key: str, dest: Path) -> None:
        """Download to ``dest``; :class:`ObjectNotFound` when absent."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """True when an object is stored under ``key``."""

    @abc.abstractmethod
    def list(self, prefix: str) -> list[ObjectInfo]:
        """Objects whose key starts with ``prefix``, sorted by key."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; absent keys are not an error."""

    @abc.abstractmethod
    def read_versioned(self, key: str) -> Versioned | None:
        """The object with its etag, or None when absent."""

    @abc.abstractmethod
    def put_if(self, key: str, data: bytes, *, etag: str | None) -> CasOutcome:
        """Write only if the object still has ``etag`` (None: only if absent)."""
