"""Writing the files of a new version (used by :mod:`pipeline.store`).

Unchanged files are hard links to the parent version's, decided by sha256;
the working copy's stat cache (:class:`~pipeline.files.FileHasher`) spares
re-reading unchanged files, and a file whose cache entry cannot be trusted
is copied and, when it turns out unchanged, replaced by a link after all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from pipeline.errors import PublishError
from pipeline.files import FileHasher, Hashed, copy_hashed
from pipeline.manifest import FileEntry

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class VersionWriter:
    """Writes the files of one new version into its staging directory: what
    the parent already has is hard-linked, the rest is copied."""

    collection: str
    version: str
    work_dir: Path
    staging: Path
    parent_dir: Path | None
    hasher: FileHasher

    def write(self, relpath: Path, inherited: FileEntry | None) -> FileEntry:
        """Write one file; ``inherited`` is the parent's entry for it."""
        target = self.staging / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        same = Hashed(inherited.sha256, inherited.size) if inherited else None
        source = self.parent_dir / relpath if self.parent_dir else None
        known = self.hasher.cached(relpath)
        if same and source and known == same and _link(source, target):
            return FileEntry(sha256=same.sha256, size=same.size)

        hashed = self._copy(relpath, target)
        if source and hashed == same:
            # Unchanged after all (a racily clean file): share the parent's
            # inode rather than storing the bytes twice.
            target.unlink()
            if not _link(source, target):
                copy_hashed(self.work_dir / relpath, target)
        return FileEntry(sha256=hashed.sha256, size=hashed.size)

    def _copy(self, relpath: Path, target: Path) -> Hashed:
        source = self.work_dir / relpath
        before = source.stat()
        hashed = copy_hashed(source, target)
        after = source.stat()
        if (before.st_mtime_ns, before.st_size) != (after.st_mtime_ns, after.st_size):
            # Something still writes to the working copy: the copy is torn.
            raise PublishError(
                self.collection, self.version, f"{relpath} changed while copied"
            )
        self.hasher.remember(relpath, before, hashed)
        return hashed


def _link(source: Path, target: Path) -> bool:
    """Hard-link ``source`` to ``target``; False when the file system refuses
    (e.g. the link limit), in which case the caller copies."""
    try:
        target.hardlink_to(source)
    except OSError as error:
        log.warning("hard_link_failed", source=str(source), error=str(error))
        return False
    return True
