"""The rebuild's output directory, which exists only once it is complete.

For ``--out DIR`` the rebuild works next to it::

    DIR.parent/.DIR.partial/   the collection being built (no manifest)
    DIR.parent/.DIR.scratch/   deltas being unpacked
    DIR.parent/.DIR.lock       held while a rebuild writes DIR

When the build is done, ``MANIFEST.json`` is written last into the partial
directory and the directory is renamed to ``DIR``. So ``DIR`` never exists
half-written: an interrupted rebuild leaves at most the partial directory,
without a manifest, and the next rebuild of ``DIR`` removes it first.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import structlog
from filelock import FileLock, Timeout

from pipeline.files import fsync_dir, regular_files, remove_tree, sha256_file
from pipeline.manifest import MANIFEST_NAME, FileEntry, Manifest
from replay.errors import OutputExists, RebuildBusy

log = structlog.get_logger(__name__)


class StagedOutput:
    """See the module docstring; use as a context manager."""

    def __init__(self, out: Path) -> None:
        self.out = out.absolute()
        parent, name = self.out.parent, self.out.name
        self.partial = parent / f".{name}.partial"
        self.scratch = parent / f".{name}.scratch"
        self._lock = FileLock(parent / f".{name}.lock")
        self._completed = False

    def __enter__(self) -> StagedOutput:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout as error:
            raise RebuildBusy(str(self.out)) from error
        try:
            self._check_out()
            self._remove_leftovers()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            remove_tree(self.scratch)
            if not self._completed:
                remove_tree(self.partial)
        finally:
            self._lock.release()

    def complete(self, manifest: Manifest) -> Path:
        """Write ``manifest`` into the partial directory and move it into
        place; returns the output directory."""
        manifest.write(self.partial)
        fsync_dir(self.partial)
        self.partial.rename(self.out)
        fsync_dir(self.out.parent)
        self._completed = True
        return self.out

    def _check_out(self) -> None:
        if (self.out / MANIFEST_NAME).exists():
            raise OutputExists(str(self.out), "a complete rebuild")
        if self.out.is_dir() and not any(self.out.iterdir()):
            self.out.rmdir()  # an empty directory the user made: ours to fill
        elif self.out.exists():
            raise OutputExists(str(self.out), "other files")

    def _remove_leftovers(self) -> None:
        for leftover in (self.partial, self.scratch):
            if leftover.exists():
                log.warning("replay_leftover_removed", path=str(leftover))
                remove_tree(leftover)


def file_entries(directory: Path) -> dict[str, FileEntry]:
    """sha256 and size of every file under ``directory`` (manifest excluded)."""
    entries = {}
    for relpath in regular_files(directory):
        name = relpath.as_posix()
        if name == MANIFEST_NAME:
            continue
        hashed = sha256_file(directory / relpath)
        entries[name] = FileEntry(sha256=hashed.sha256, size=hashed.size)
    return entries
