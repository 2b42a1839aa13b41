"""``replay verify``: does the live version hold what the journal says?

::

    live manifest (version V, applied_seq N, digest D)
      ├─ rebuild to N in a temporary place  ─▶ per-record hashes R
      └─ copy V (sha256 of each file checked) ─▶ per-record hashes L
    ok  ⇔  digest(R) = digest(L) = D  and every file matched its manifest

(digest(L) is computed in D's format; R and L are compared in the format in
force.)

When they differ, comparing the per-record hashes names the records: ids
only in the rebuild, only in the live version, or stored differently.
Both sides are produced by ChromaDB from the same inputs, so a difference is
a real one (DESIGN section 6: compare rebuilds with rebuilds). The live
version is resolved once: a consumer promoting meanwhile does not change
what is compared, since a version never changes.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from journal.base import Journal
from pipeline.chroma import open_collection
from pipeline.digest import DIGEST_FORMAT, Digest, digest_format, digest_like
from pipeline.errors import NoLiveVersion, VersionCorrupt
from pipeline.files import copy_tree_writable, remove_tree
from pipeline.manifest import MANIFEST_NAME, Manifest, copy_version
from pipeline.store import SharedStore
from replay.builder import Rebuilder
from replay.hashes import RecordDiff, RecordIndex
from replay.plan import LATEST, Target, plan_rebuild
from replay.progress import ReplayProgress
from replay.sources import SnapshotInfo, SnapshotSource

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of verifying one collection's live version.

    ``diff`` compares the rebuild (left) with the live version (right).
    """

    collection: str
    live_version: str
    applied_seq: int
    recorded_digest: str
    live: Digest
    live_as_recorded: str
    rebuilt: Digest
    files_match: bool
    diff: RecordDiff
    base: SnapshotInfo | None
    seconds: float

    @property
    def ok(self) -> bool:
        """True when the live version holds exactly what the journal says."""
        return (
            self.files_match
            and self.live.hexdigest == self.rebuilt.hexdigest
            and self.recorded_digest == self.live_as_recorded
        )


def verify_live(
    collection: str,
    *,
    journal: Journal,
    shared: SharedStore,
    rebuilder: Rebuilder,
    sources: Sequence[SnapshotSource],
    scratch_root: Path,
    base: str = LATEST,
    sample: int = 10,
    progress: ReplayProgress | None = None,
) -> VerifyReport:
    """Rebuild ``collection`` to its live ``applied_seq`` and compare."""
    started = time.monotonic()
    live = shared.live_manifest(collection)
    if live is None:
        raise NoLiveVersion(collection)
    plan = plan_rebuild(
        journal, collection, Target(to_seq=live.applied_seq), sources, base=base
    )
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_root, prefix="verify-") as tmp:
        work = Path(tmp)
        built = rebuilder.build(
            plan, work / "rebuild", scratch=work / "scratch", progress=progress
        )
        source = shared.version_path(collection, live.version)
        live_index, as_recorded, files_match = _live_index(source, live, work / "live")
    report = VerifyReport(
        collection=collection,
        live_version=live.version,
        applied_seq=live.applied_seq,
        recorded_digest=live.digest,
        live=live_index.digest(),
        live_as_recorded=as_recorded,
        rebuilt=built.digest,
        files_match=files_match,
        diff=built.index.diff(live_index, sample),
        base=plan.base,
        seconds=time.monotonic() - started,
    )
    _log_report(report)
    return report


def _live_index(
    source: Path, live: Manifest, copy: Path
) -> tuple[RecordIndex, str, bool]:
    """Hashes of the live version's records, read from a private copy (opening
    a directory writes to it), their digest in the format the manifest
    recorded, and whether its files matched the manifest."""
    copy.mkdir()
    files_match = True
    try:
        copy_version(source, live, copy)
    except VersionCorrupt as error:
        # Still compare the records: the ids are what an operator needs.
        log.warning("verify_files_differ", collection=live.collection, error=str(error))
        files_match = False
        _recopy_as_is(source, copy)
    with open_collection(copy, live.collection, space=None, create=False) as opened:
        index = RecordIndex.scan(opened)
        as_recorded = index.digest().hexdigest
        if digest_format(live.digest) != DIGEST_FORMAT:
            as_recorded = digest_like(opened, live.digest).hexdigest
        return index, as_recorded, files_match


def _recopy_as_is(source: Path, copy: Path) -> None:
    remove_tree(copy)
    copy_tree_writable(source, copy)
    (copy / MANIFEST_NAME).unlink(missing_ok=True)


def _log_report(report: VerifyReport) -> None:
    log.info(
        "replay_verified",
        collection=report.collection,
        version=report.live_version,
        applied_seq=report.applied_seq,
        ok=report.ok,
        live_digest=report.live.hexdigest,
        rebuilt_digest=report.rebuilt.hexdigest,
        recorded_digest=report.recorded_digest,
        differing=report.diff.total,
        seconds=round(report.seconds, 3),
    )
