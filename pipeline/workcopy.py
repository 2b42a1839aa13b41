"""The consumer's warm, private working copy of one collection.

Layout under ``STAGING_ROOT/<collection>/``::

    chroma/             the ChromaDB directory the consumer opens and writes
    state.json          {base_version, applied_seq, clean}
    record_hashes.bin   per-record hashes for the incremental digest
    scratch/            deltas being unpacked
    .lock               held while this process uses the working copy

The copy is reused between batches only while it provably equals the live
version: the state names the live version and ``applied_seq`` and is marked
clean, and (once per process) every file's sha256 matches the live
manifest. The state is marked dirty before ChromaDB opens the copy and clean
after a promotion, so a crash in between always leads to a rebuild.

The record hashes live in memory between batches; ``record_hashes.bin``
only spares a restarted consumer the full scan that would otherwise rebuild
them. It is written when the copy is released and otherwise at most every
:data:`RECORD_HASHES_SAVE_SECONDS` (a 70k-record file took 0.2 s to write,
a tenth of a small batch), and trusted on load only when it reproduces the
live version's digest, so a file left stale by a crash costs one scan and
is never believed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog
from filelock import FileLock, Timeout

from pipeline.digest import RecordHashes
from pipeline.errors import WorkingCopyBusy
from pipeline.files import (
    WRITABLE_DIR,
    FileHasher,
    regular_files,
    remove_tree,
    sha256_file,
)
from pipeline.manifest import Manifest, copy_version
from pipeline.store import SharedStore

log = structlog.get_logger(__name__)

RECORD_HASHES_SAVE_SECONDS = 60.0


@dataclass(frozen=True)
class _State:
    base_version: str | None
    applied_seq: int
    clean: bool


class WorkingCopy:
    """See the module docstring."""

    def __init__(self, staging_root: Path, collection: str, store: SharedStore):
        self.collection = collection
        self.home = staging_root / collection
        self.path = self.home / "chroma"
        self.scratch = self.home / "scratch"
        self.hasher = FileHasher(self.path)
        self.record_hashes: RecordHashes | None = None
        self._store = store
        self._state_file = self.home / "state.json"
        self._hashes_file = self.home / "record_hashes.bin"
        self._lock: FileLock | None = None
        self._verified = False
        self._saved_at: float | None = None  # None: nothing saved yet
        self._unsaved = False  # the in-memory hashes are newer than the file

    def ensure(self, live: Manifest | None) -> bool:
        """Make the copy equal ``live`` (None: empty); True when rebuilt."""
        self._hold_lock()
        if self._matches(live):
            return False
        self._rebuild(live)
        return True

    def mark_dirty(self) -> None:
        """Record that the copy is about to diverge from its base version."""
        state = self._read_state()
        base = state.base_version if state else None
        applied = state.applied_seq if state else 0
        self._write_state(_State(base, applied, clean=False))
        self._unsaved = False  # the batch will change the hashes in memory

    def mark_clean(
        self, manifest: Manifest, record_hashes: RecordHashes | None
    ) -> None:
        """Record that the copy now equals the promoted ``manifest``, whose
        records hash to ``record_hashes`` (None when not known)."""
        self.record_hashes = record_hashes
        if record_hashes is None:
            self._hashes_file.unlink(missing_ok=True)
        else:
            self._unsaved = True
            due = self._saved_at is None or (
                time.monotonic() - self._saved_at >= RECORD_HASHES_SAVE_SECONDS
            )
            if due:
                self._save_hashes()
        self._write_state(_State(manifest.version, manifest.applied_seq, clean=True))

    def discard(self) -> None:
        """Throw the copy away (after a failed batch); the next
        :meth:`ensure` rebuilds it."""
        self._state_file.unlink(missing_ok=True)
        self._hashes_file.unlink(missing_ok=True)
        remove_tree(self.path)
        remove_tree(self.scratch)
        for leftover in self.home.glob(".*-*"):  # a crash's temporary files
            if leftover.is_dir():
                remove_tree(leftover)
            else:
                leftover.unlink(missing_ok=True)
        self.hasher = FileHasher(self.path)
        self.record_hashes = None
        self._verified = False
        self._unsaved = False

    def close(self) -> None:
        """Save the record hashes if they are newer than their file, and let
        another process use the working copy."""
        if self._unsaved:
            try:
                self._save_hashes()
            except OSError:
                # Only a restart's scan depends on the file; the stale one
                # is recognised by its digest and ignored.
                log.warning(
                    "record_hashes_not_saved", collection=self.collection, exc_info=True
                )
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- checking -------------------------------------------------------------

    def _matches(self, live: Manifest | None) -> bool:
        state = self._read_state()
        if state is None or not state.clean or not self.path.is_dir():
            return False
        if state.base_version != (live.version if live else None):
            return False
        if state.applied_seq != (live.applied_seq if live else 0):
            return False
        if not self._verified:
            self._verified = self._files_match(live)
            if not self._verified:
                return False
        if self.record_hashes is None and live is not None:
            self.record_hashes = self._load_record_hashes(live)
            if self.record_hashes is not None:
                self._saved_at = time.monotonic()
        return True

    def _files_match(self, live: Manifest | None) -> bool:
        """Once per process: a crash or power loss may have left files the
        state does not describe, so compare every file with the manifest."""
        expected = live.files if live else {}
        present = {path.as_posix(): path for path in regular_files(self.path)}
        if set(present) != set(expected):
            return False
        for name, relpath in present.items():
            before = (self.path / relpath).stat()
            hashed = sha256_file(self.path / relpath)
            if (hashed.sha256, hashed.size) != (
                expected[name].sha256,
                expected[name].size,
            ):
                return False
            self.hasher.remember(relpath, before, hashed)
        return True

    def _load_record_hashes(self, live: Manifest) -> RecordHashes | None:
        try:
            hashes = RecordHashes.load(self._hashes_file)
        except (OSError, ValueError):
            return None
        # Trust the file only when it reproduces the live digest exactly.
        return hashes if hashes.digest().hexdigest == live.digest else None

    def _save_hashes(self) -> None:
        if self.record_hashes is not None:
            self.record_hashes.save(self._hashes_file)
        self._saved_at = time.monotonic()
        self._unsaved = False

    # -- rebuilding -----------------------------------------------------------

    def _rebuild(self, live: Manifest | None) -> None:
        self.discard()
        self.home.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(dir=self.home, prefix=".building-"))
        try:
            hasher = self._copy_version(live, building)
            building.chmod(WRITABLE_DIR)
            building.rename(self.path)
        except BaseException:
            remove_tree(building)
            raise
        self.hasher = hasher.moved_to(self.path)
        self._verified = True
        self._write_state(
            _State(
                live.version if live else None, live.applied_seq if live else 0, True
            )
        )
        log.debug("working_copy_rebuilt", collection=self.collection)

    def _copy_version(self, live: Manifest | None, target: Path) -> FileHasher:
        """Copy the live version's files, checking each against the manifest.

        The copies keep their source's mtime, so that the hashes taken here
        are trusted by the stat cache (see :mod:`pipeline.files`) and the
        next publish links the unchanged index files instead of copying
        them.
        """
        hasher = FileHasher(target)
        if live is None:
            return hasher
        source = self._store.version_path(self.collection, live.version)
        copied = copy_version(source, live, target, keep_mtime=True)
        for name, hashed in copied.items():
            hasher.remember(Path(name), (target / name).stat(), hashed)
        return hasher

    # -- state ----------------------------------------------------------------

    def _hold_lock(self) -> None:
        if self._lock is not None:
            return
        self.home.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.home / ".lock")
        try:
            lock.acquire(timeout=0)
        except Timeout as error:
            raise WorkingCopyBusy(self.collection, str(self.home)) from error
        self._lock = lock

    def _read_state(self) -> _State | None:
        try:
            data = json.loads(self._state_file.read_text())
            return _State(
                base_version=data["base_version"],
                applied_seq=int(data["applied_seq"]),
                clean=bool(data["clean"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_state(self, state: _State) -> None:
        fd, name = tempfile.mkstemp(dir=self.home, prefix=".state-")
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(state), out)
            out.flush()
            os.fsync(out.fileno())
        Path(name).replace(self._state_file)
