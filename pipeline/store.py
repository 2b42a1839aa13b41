"""The shared store: immutable collection versions behind one symlink each.

Layout under ``root`` (``CHROMA_ROOT``)::

    lines                      -> .versions/lines/<version-id>   (relative link)
    .versions/lines/<id>/      chroma files + MANIFEST.json, read-only
    .versions/lines/.tmp-<id>/ a publish in progress (or one that crashed)
    .versions/lines/.del-<id>/ a version being garbage collected
    .locks/lines.lock          serialises promote and gc on this host

Publishing never touches a published version or the link; promotion is one
``rename(2)`` of a new link over the old one, so a reader resolving the link
sees the old version or the new one, never a mixture. The compare-and-swap
in :meth:`SharedStore.promote` runs under a file lock; across hosts the
collection lease (:mod:`pipeline.lease`) keeps writers apart, and the fencing
token check refuses a writer whose lease was taken over.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from filelock import FileLock, Timeout
from ulid import ULID

from journal.base import Clock, utc_now
from journal.events import validate_collection_name
from pipeline import faults
from pipeline.errors import NoLiveVersion, PipelineError, PromotionRefused, PublishError
from pipeline.files import (
    FileHasher,
    fsync_dir,
    regular_files,
    remove_tree,
    seal_tree,
)
from pipeline.manifest import MANIFEST_NAME, FileEntry, Manifest
from pipeline.version_writer import VersionWriter

log = structlog.get_logger(__name__)

VERSIONS_DIR = ".versions"
_TMP = ".tmp-"
_DELETING = ".del-"
_ID_TIME_FORMAT = "%Y%m%dT%H%M%S"


def new_version_id(now: datetime) -> str:
    """``20261203T161530123Z-<16 random ULID characters>``.

    Ids sort by creation time to the millisecond; the random part (80 bits)
    keeps two writers in the same millisecond apart.
    """
    now = now.astimezone(UTC)
    stamp = f"{now.strftime(_ID_TIME_FORMAT)}{now.microsecond // 1000:03d}Z"
    return f"{stamp}-{str(ULID())[10:]}"


def version_time(version: str) -> datetime | None:
    """The creation time encoded in a version id; None for a foreign name."""
    try:
        stamp = datetime.strptime(version[:15], _ID_TIME_FORMAT).replace(tzinfo=UTC)
        millis = int(version[15:18])
    except ValueError:
        return None
    if version[18:20] != "Z-":
        return None
    return stamp + timedelta(milliseconds=millis)


class SharedStore:
    """Versions and live links of every collection under ``root``."""

    def __init__(
        self, root: Path, *, clock: Clock = utc_now, lock_timeout_s: float = 30.0
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self._clock = clock
        self._lock_timeout_s = lock_timeout_s

    # -- reading --------------------------------------------------------------

    def collections(self) -> list[str]:
        """Collections with at least one published version, sorted."""
        base = self.root / VERSIONS_DIR
        if not base.is_dir():
            return []
        return sorted(path.name for path in base.iterdir() if self.versions(path.name))

    def versions(self, collection: str) -> list[str]:
        """Published version ids, oldest first."""
        directory = self._versions_dir(collection)
        if not directory.is_dir():
            return []
        return sorted(
            path.name
            for path in directory.iterdir()
            if not path.name.startswith(".") and path.is_dir()
        )

    def live_version(self, collection: str) -> str | None:
        """The version the collection's link names, None before the first
        promotion."""
        try:
            target = self._link(collection).readlink()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise PipelineError(
                f"{self._link(collection)} is not a symbolic link: {error}"
            ) from error
        return Path(target).name

    def live_manifest(self, collection: str) -> Manifest | None:
        """The live version's manifest, None before the first promotion."""
        version = self.live_version(collection)
        return None if version is None else self.manifest(collection, version)

    def live_path(self, collection: str) -> Path:
        """The real path of the live version (resolve once, then use it)."""
        version = self.live_version(collection)
        if version is None:
            raise NoLiveVersion(collection)
        return self.version_path(collection, version)

    def version_path(self, collection: str, version: str) -> Path:
        """Where a version's files are."""
        return self._versions_dir(collection) / version

    def manifest(self, collection: str, version: str) -> Manifest:
        """A published version's manifest."""
        return Manifest.read(self.version_path(collection, version))

    # -- publishing -----------------------------------------------------------

    def publish(
        self,
        collection: str,
        work_dir: Path,
        parent: Manifest | None,
        *,
        applied_seq: int,
        first_seq: int | None,
        last_seq: int | None,
        digest: str,
        record_count: int,
        fencing_token: int,
        writer: str,
        hasher: FileHasher | None = None,
    ) -> Manifest:
        """Write ``work_dir`` (a closed ChromaDB directory) as a new version.

        Files whose sha256 equals the parent's entry are hard-linked from the
        parent; the others are copied. ``hasher`` (the working copy's stat
        cache, rooted at ``work_dir``) spares re-reading unchanged files and
        learns the hashes of the copied ones. The manifest is written last,
        then the tree is made read-only and renamed into place. The version
        is not live until :meth:`promote`.
        """
        created_at = self._clock()
        version = new_version_id(created_at)
        directory = self._versions_dir(collection)
        directory.mkdir(parents=True, exist_ok=True)
        staging = directory / f"{_TMP}{version}"
        staging.mkdir()
        try:
            files = self._write_files(
                collection, version, work_dir, staging, parent, hasher
            )
            faults.point("files_published")
            manifest = Manifest(
                collection=collection,
                version=version,
                parent=parent.version if parent else None,
                applied_seq=applied_seq,
                first_seq=first_seq,
                last_seq=last_seq,
                files=files,
                digest=digest,
                record_count=record_count,
                fencing_token=fencing_token,
                writer=writer,
                created_at=created_at,
            )
            manifest.write(staging)
            seal_tree(staging)
            faults.point("manifest_written")
            staging.rename(directory / version)
            fsync_dir(directory)
        except BaseException:
            remove_tree(staging)
            raise
        return manifest

    def _write_files(
        self,
        collection: str,
        version: str,
        work_dir: Path,
        staging: Path,
        parent: Manifest | None,
        hasher: FileHasher | None,
    ) -> dict[str, FileEntry]:
        job = VersionWriter(
            collection=collection,
            version=version,
            work_dir=work_dir,
            staging=staging,
            parent_dir=self.version_path(collection, parent.version)
            if parent
            else None,
            hasher=hasher or FileHasher(work_dir),
        )
        inherited = parent.files if parent else {}
        files: dict[str, FileEntry] = {}
        for relpath in regular_files(work_dir):
            name = relpath.as_posix()
            if name == MANIFEST_NAME:
                raise PublishError(collection, version, f"{work_dir} holds a manifest")
            files[name] = job.write(relpath, inherited.get(name))
        return files

    # -- promoting ------------------------------------------------------------

    def promote(
        self,
        collection: str,
        manifest: Manifest,
        *,
        expected_parent: str | None,
        fencing_token: int,
    ) -> None:
        """Make ``manifest``'s version live, if the live version is still
        ``expected_parent`` and was not promoted with a larger fencing token;
        otherwise raise :class:`PromotionRefused` and change nothing."""
        if manifest.collection != collection or manifest.fencing_token != fencing_token:
            raise ValueError("manifest does not belong to this promotion")
        if not (
            self.version_path(collection, manifest.version) / MANIFEST_NAME
        ).is_file():
            raise PromotionRefused(collection, f"{manifest.version} is not published")
        with self._locked(collection):
            self._check_swap(collection, expected_parent, fencing_token)
            self._swap_link(collection, manifest.version)
        faults.point("link_swapped")

    def _check_swap(
        self, collection: str, expected_parent: str | None, fencing_token: int
    ) -> None:
        live = self.live_version(collection)
        if live != expected_parent:
            raise PromotionRefused(
                collection, f"live version is {live}, expected {expected_parent}"
            )
        if live is None:
            return
        live_token = self.manifest(collection, live).fencing_token
        if live_token > fencing_token:
            raise PromotionRefused(
                collection,
                f"live version {live} carries fencing token {live_token}, newer "
                f"than this writer's {fencing_token} (its lease was taken over)",
            )

    def _swap_link(self, collection: str, version: str) -> None:
        link = self._link(collection)
        if link.exists() and not link.is_symlink():
            raise PromotionRefused(collection, f"{link} is not a symbolic link")
        temporary = self.root / f".{collection}.link-{ULID()}"
        temporary.symlink_to(Path(VERSIONS_DIR, collection, version))
        temporary.replace(link)
        fsync_dir(self.root)

    # -- removing -------------------------------------------------------------

    def promote_or_remove(
        self,
        collection: str,
        manifest: Manifest,
        *,
        expected_parent: str | None,
        fencing_token: int,
    ) -> None:
        """:meth:`promote`; a refused version is removed before the refusal
        propagates, so it never lingers beside the live one."""
        try:
            self.promote(
                collection,
                manifest,
                expected_parent=expected_parent,
                fencing_token=fencing_token,
            )
        except PromotionRefused:
            self.remove_version(collection, manifest.version)
            raise

    def remove_version(self, collection: str, version: str) -> None:
        """Delete a version that is not live (e.g. one a refused promotion
        left behind)."""
        with self._locked(collection):
            if self.live_version(collection) == version:
                raise PipelineError(f"{collection}: {version} is live; not removed")
            doomed = self._retire(collection, version)
        remove_tree(doomed)

    def gc(self, collection: str, keep: int, grace_seconds: float) -> list[str]:
        """Remove versions that are not live, not among the newest ``keep``,
        and older than ``grace_seconds`` (readers may still have younger ones
        open); also crashed publishes older than the grace period and
        deletions a crash interrupted. Returns the version ids removed,
        then the names of the leftover directories removed."""
        now = self._clock()
        grace = timedelta(seconds=grace_seconds)
        with self._locked(collection):
            leftovers = self._leftovers(collection, now, grace)
            live = self.live_version(collection)
            published = self.versions(collection)
            kept = (
                {live, *published[max(0, len(published) - keep) :]} if keep else {live}
            )
            old = [v for v in published if v not in kept and _older(v, now, grace)]
            doomed = [self._retire(collection, version) for version in old]
        for path in doomed + leftovers:
            remove_tree(path)
        faults.point("gc_done")
        removed = old + [path.name for path in leftovers]
        if removed:
            log.info("versions_removed", collection=collection, removed=removed)
        return removed

    def _retire(self, collection: str, version: str) -> Path:
        """Rename a version out of sight first, so that a crash halfway
        through deleting it leaves no half version behind."""
        directory = self._versions_dir(collection)
        doomed = directory / f"{_DELETING}{version}"
        (directory / version).rename(doomed)
        return doomed

    def _leftovers(
        self, collection: str, now: datetime, grace: timedelta
    ) -> list[Path]:
        found: list[Path] = []
        directory = self._versions_dir(collection)
        for path in directory.glob(f"{_TMP}*"):
            if _older(path.name[len(_TMP) :], now, grace):
                found.append(path)
        found += directory.glob(f"{_DELETING}*")
        for stale_link in self.root.glob(f".{collection}.link-*"):
            stale_link.unlink(missing_ok=True)
        return found

    # -- helpers --------------------------------------------------------------

    def _link(self, collection: str) -> Path:
        return self.root / validate_collection_name(collection)

    def _versions_dir(self, collection: str) -> Path:
        return self.root / VERSIONS_DIR / validate_collection_name(collection)

    @contextmanager
    def _locked(self, collection: str) -> Iterator[None]:
        locks = self.root / ".locks"
        locks.mkdir(exist_ok=True)
        lock = FileLock(locks / f"{validate_collection_name(collection)}.lock")
        try:
            lock.acquire(timeout=self._lock_timeout_s)
        except Timeout as error:
            raise PromotionRefused(
                collection, f"store lock busy for {self._lock_timeout_s} s"
            ) from error
        try:
            yield
        finally:
            lock.release()


def _older(version: str, now: datetime, grace: timedelta) -> bool:
    created = version_time(version)
    return created is not None and now - created >= grace
