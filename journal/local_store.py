"""The object store as a local folder (the embedded default backend).

Keys map to files under the root with the same layout S3 would hold. Every
write goes to a temporary file in the target's directory, is fsynced and
then renamed over the target, so a reader sees the old object or the new
one, never a torn one. Conditional writes (``put_if``) take a per-key file
lock, so that processes sharing the folder get compare-and-swap semantics.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import structlog
from filelock import FileLock, Timeout

from journal.errors import ObjectNotFound, ObjectStoreError, UnsafeObjectKey
from journal.objectstore import (
    CasOutcome,
    ObjectInfo,
    ObjectStore,
    Versioned,
    check_key,
)

log = structlog.get_logger(__name__)

#: Names starting with this are the store's own (temporary files, locks);
#: keys may not use them and listings never show them.
RESERVED_PREFIX = ".cj-"
_TMP_PREFIX = f"{RESERVED_PREFIX}tmp-"
_LOCK_DIR = f"{RESERVED_PREFIX}locks"
_COPY_CHUNK = 1024 * 1024


def content_etag(data: bytes) -> str:
    """The etag of an object in this store: the sha256 hex of its bytes."""
    return hashlib.sha256(data).hexdigest()


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``; see the module docstring."""

    def __init__(self, root: Path, *, lock_timeout_s: float = 60.0) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.url = f"file://{self.root}"
        self._lock_timeout_s = lock_timeout_s

    # -- blobs ----------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically."""
        path = self._path(key)
        with self._os_errors(key):
            _atomic_write(path, lambda out: out.write(data))

    def put_file(self, key: str, path: Path) -> None:
        """Copy the local file ``path`` under ``key`` atomically."""
        target = self._path(key)
        with path.open("rb") as source, self._os_errors(key):
            _atomic_write(target, lambda out: _copy(source, out))

    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; :class:`ObjectNotFound` when absent."""
        path = self._path(key)
        with self._os_errors(key):
            return path.read_bytes()

    def get_file(self, key: str, dest: Path) -> None:
        """Copy the object to ``dest`` (replaced atomically)."""
        path = self._path(key)
        with self._os_errors(key), path.open("rb") as source:
            _atomic_write(dest, lambda out: _copy(source, out))

    def exists(self, key: str) -> bool:
        """True when a file is stored under ``key``."""
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Objects whose key starts with ``prefix``, sorted by key."""
        start = self._list_start(prefix)
        found = [
            ObjectInfo(key=key, size=size)
            for key, size in self._walk(start)
            if key.startswith(prefix)
        ]
        return sorted(found, key=lambda info: info.key)

    def delete(self, key: str) -> None:
        """Remove the object; an absent key is not an error."""
        path = self._path(key)
        with self._os_errors(key):
            path.unlink(missing_ok=True)

    # -- compare and swap -----------------------------------------------------

    def read_versioned(self, key: str) -> Versioned | None:
        """The object and its etag (sha256 of the content), None when absent."""
        try:
            data = self.get_bytes(key)
        except ObjectNotFound:
            return None
        return Versioned(data=data, etag=content_etag(data))

    def put_if(self, key: str, data: bytes, *, etag: str | None) -> CasOutcome:
        """Write only if the object still has ``etag`` (None: only if absent).

        The check and the write happen under the key's file lock, so of two
        writers holding the same etag exactly one gets ``WRITTEN``.
        """
        path = self._path(key)
        with self._key_lock(key):
            current = self.read_versioned(key)
            current_etag = None if current is None else current.etag
            if current_etag != etag:
                log.debug("put_if_conflict", key=key, expected=etag)
                return CasOutcome.CONFLICT
            with self._os_errors(key):
                _atomic_write(path, lambda out: out.write(data))
        return CasOutcome.WRITTEN

    # -- paths ----------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """The file for ``key``, refusing keys that leave the root."""
        check_key(key)
        if any(part.startswith(RESERVED_PREFIX) for part in key.split("/")):
            raise UnsafeObjectKey(
                f"object key {key!r} uses the reserved prefix {RESERVED_PREFIX!r}"
            )
        # A symlink inside the root could still point outside it.
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise UnsafeObjectKey(f"object key {key!r} resolves outside the store")
        return path

    def _list_start(self, prefix: str) -> Path:
        """The deepest directory that can hold keys starting with ``prefix``."""
        directory = prefix.rpartition("/")[0]
        return self.root if not directory else self._path(directory)

    def _walk(self, start: Path) -> Iterator[tuple[str, int]]:
        """(key, size) of every object file under ``start``."""
        for folder, dirs, files in os.walk(start):
            dirs[:] = [name for name in dirs if not name.startswith(RESERVED_PREFIX)]
            for name in files:
                if name.startswith(RESERVED_PREFIX):
                    continue
                path = Path(folder) / name
                try:
                    size = path.stat().st_size
                except FileNotFoundError:
                    continue  # deleted while listing
                yield path.relative_to(self.root).as_posix(), size

    @contextmanager
    def _key_lock(self, key: str) -> Iterator[None]:
        lock_dir = self.root / _LOCK_DIR
        lock_dir.mkdir(exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()
        lock = FileLock(lock_dir / f"{name}.lock", timeout=self._lock_timeout_s)
        try:
            with lock:
                yield
        except Timeout as error:
            raise ObjectStoreError(
                f"timed out after {self._lock_timeout_s}s waiting for the lock "
                f"on object key {key!r}"
            ) from error

    @contextmanager
    def _os_errors(self, key: str) -> Iterator[None]:
        """The one place where file system errors become store errors."""
        try:
            yield
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
            raise ObjectNotFound(key) from error
        except OSError as error:
            raise ObjectStoreError(
                f"object store {self.url}: {key!r}: {error}"
            ) from error


def _copy(source: BinaryIO, out: BinaryIO) -> None:
    shutil.copyfileobj(source, out, _COPY_CHUNK)


def _atomic_write(path: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through a fsynced temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(0o644)  # mkstemp creates 0600
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
