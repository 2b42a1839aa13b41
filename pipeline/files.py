"""File primitives for versions: hashing copies, fsync, read-only trees.

:class:`FileHasher` remembers the sha256 of a file keyed by its stat, so that
publishing a working copy does not re-read a 400 MB index that did not
change. A remembered hash is trusted only when the file's mtime is older
than the moment it was hashed by :data:`RACY_MARGIN_NS`: a file rewritten
within the same timestamp tick as its hashing would otherwise keep size,
mtime and inode and look unchanged (git calls these entries "racily
clean"; see gitformat-index(5)). Such files are simply hashed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CHUNK = 1024 * 1024
#: Files from this size on are hashed in a second thread while they copy
#: (on Linux, where ``sendfile`` copies between regular files).
_PARALLEL_MIN_BYTES = 8 * 1024 * 1024
_KERNEL_COPY = sys.platform == "linux"
_SENDFILE_CHUNK = 64 * 1024 * 1024
#: Coarsest file timestamp granularity we expect (FAT has 2 s); see module doc.
RACY_MARGIN_NS = 2_000_000_000
READ_ONLY_FILE = 0o444
READ_ONLY_DIR = 0o555
WRITABLE_FILE = 0o644
WRITABLE_DIR = 0o755


@dataclass(frozen=True)
class Hashed:
    """A file's sha256 and size."""

    sha256: str
    size: int


def sha256_file(path: Path) -> Hashed:
    """Hash a file's bytes."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return Hashed(digest.hexdigest(), size)


def copy_hashed(
    source: Path, target: Path, *, mode: int = WRITABLE_FILE, durable: bool = True
) -> Hashed:
    """Copy ``source`` to the new file ``target`` and return its hash;
    ``durable`` fsyncs the copy.

    A large file is copied by the kernel (``sendfile``, no trip through
    Python) while a second thread hashes the source, so that hashing and
    writing, then hashing and fsync, overlap instead of adding up: at
    140 MB (the SQLite file of a 70k x 1536 collection, rewritten by every
    batch) sha256 alone took 0.34 s and copy plus fsync 0.31 s here. The
    source must not change meanwhile; callers compare its stat before and
    after (:mod:`pipeline.version_writer`), and a copy whose length differs
    from what was hashed raises :class:`TornCopyError`.
    """
    if not _KERNEL_COPY or source.stat().st_size < _PARALLEL_MIN_BYTES:
        return _copy_then_hash(source, target, mode, durable)
    with ThreadPoolExecutor(1, thread_name_prefix="sha256") as pool:
        hashing = pool.submit(sha256_file, source)
        copied = _kernel_copy(source, target, mode, durable)
        hashed = hashing.result()
    if copied != hashed.size:
        raise TornCopyError(source, copied, hashed.size)
    return hashed


class TornCopyError(OSError):
    """A file changed size while it was being copied."""

    def __init__(self, source: Path, copied: int, hashed: int) -> None:
        super().__init__(
            f"{source} changed while copied: {copied} bytes copied, {hashed} hashed"
        )


def _create(target: Path, mode: int) -> int:
    return os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)


def _copy_then_hash(source: Path, target: Path, mode: int, durable: bool) -> Hashed:
    """One read of the source; the hash is of exactly the bytes written."""
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as reader, os.fdopen(_create(target, mode), "wb") as out:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        if durable:
            os.fsync(out.fileno())
    target.chmod(mode)  # os.open's mode is filtered by the umask
    return Hashed(digest.hexdigest(), size)


def _kernel_copy(source: Path, target: Path, mode: int, durable: bool) -> int:
    """Copy with ``sendfile`` (as :func:`shutil.copyfile` does on Linux) and
    return the bytes copied."""
    with source.open("rb") as reader:
        out = _create(target, mode)
        try:
            copied = 0
            while sent := os.sendfile(out, reader.fileno(), copied, _SENDFILE_CHUNK):
                copied += sent
            if durable:
                os.fsync(out)
        finally:
            os.close(out)
    target.chmod(mode)
    return copied


def copy_tree_writable(source: Path, target: Path) -> None:
    """Copy the regular files under ``source`` into the new directory
    ``target`` with writable modes (a sealed version is read-only, and
    ChromaDB writes to any directory it opens)."""
    target.mkdir(parents=True, mode=WRITABLE_DIR)
    for relpath in regular_files(source):
        (target / relpath).parent.mkdir(parents=True, exist_ok=True, mode=WRITABLE_DIR)
        copy_hashed(source / relpath, target / relpath, durable=False)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def regular_files(root: Path) -> Iterator[Path]:
    """Every file under ``root`` as a relative path, sorted; refuses links and
    special files, which a ChromaDB directory never holds."""
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path} is not a regular file or directory")
        yield path.relative_to(root)


def subdirs_deepest_first(root: Path) -> list[Path]:
    """``root`` and every directory under it, children before parents."""
    found = [
        path for path in root.rglob("*") if path.is_dir() and not path.is_symlink()
    ]
    found.sort(key=lambda path: len(path.parts), reverse=True)
    return [*found, root]


def seal_tree(root: Path) -> None:
    """Make every file and directory under ``root`` read-only and fsync the
    directories. Files must already be fsynced."""
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(READ_ONLY_FILE)
    for directory in subdirs_deepest_first(root):
        fsync_dir(directory)
        directory.chmod(READ_ONLY_DIR)


def remove_tree(root: Path) -> None:
    """Delete a tree, including the read-only directories of a sealed version.

    Two removers may race on the same retired version (a refused promotion
    removing its own version while another writer's gc sweeps retired ones),
    so whatever has already vanished is not an error.
    """
    if not root.exists():
        return
    with contextlib.suppress(FileNotFoundError):
        for directory in subdirs_deepest_first(root):
            with contextlib.suppress(FileNotFoundError):
                directory.chmod(WRITABLE_DIR)
    shutil.rmtree(root, onerror=_ignore_vanished)


def _ignore_vanished(_function: object, _path: str, exc_info: Any) -> None:
    error = exc_info[1]
    if not isinstance(error, FileNotFoundError):
        raise error


@dataclass(frozen=True)
class _Entry:
    size: int
    mtime_ns: int
    inode: int
    sha256: str
    hashed_at_ns: int

    def matches(self, info: os.stat_result) -> bool:
        return (
            info.st_size == self.size
            and info.st_mtime_ns == self.mtime_ns
            and info.st_ino == self.inode
            and self.mtime_ns < self.hashed_at_ns - RACY_MARGIN_NS
        )


class FileHasher:
    """sha256 of the files under one directory, cached by stat (see module
    docstring for when a cached value is trusted)."""

    def __init__(self, root: Path, entries: dict[str, _Entry] | None = None) -> None:
        self.root = root
        self._entries: dict[str, _Entry] = dict(entries or {})

    def cached(self, relpath: Path) -> Hashed | None:
        """The remembered hash when the file provably did not change since."""
        entry = self._entries.get(relpath.as_posix())
        if entry is None:
            return None
        try:
            info = (self.root / relpath).stat()
        except FileNotFoundError:
            return None
        return Hashed(entry.sha256, entry.size) if entry.matches(info) else None

    def remember(self, relpath: Path, info: os.stat_result, hashed: Hashed) -> None:
        """Record ``hashed`` for the file whose stat, taken before it was read,
        is ``info``."""
        self._entries[relpath.as_posix()] = _Entry(
            size=info.st_size,
            mtime_ns=info.st_mtime_ns,
            inode=info.st_ino,
            sha256=hashed.sha256,
            hashed_at_ns=time.time_ns(),
        )

    def moved_to(self, root: Path) -> FileHasher:
        """The same entries for the tree after it was renamed to ``root``
        (a rename keeps inodes and mtimes)."""
        return FileHasher(root, self._entries)
