"""``replay rebuild``: build a planned collection state, keep it, promote it.

::

    plan ─▶ stage output ─▶ build (base + journal) ─▶ [publish + promote]
        ─▶ write MANIFEST.json ─▶ rename into place

The output is a version directory like the shared store's: the ChromaDB
files plus a ``MANIFEST.json`` naming the collection, ``applied_seq``, the
base it started from (as ``parent``), every file's sha256 and the content
digest. A promoted rebuild's output carries the manifest it was published
with.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from journal.base import Clock, utc_now
from pipeline.manifest import Manifest
from pipeline.store import new_version_id
from replay.builder import Built, Rebuilder
from replay.output import StagedOutput, file_entries
from replay.plan import ReplayPlan
from replay.progress import ReplayProgress
from replay.promote import Promoter


@dataclass(frozen=True)
class RebuildResult:
    """A finished rebuild: where it is (None when not kept), its manifest,
    and the manifest it was promoted with (None when not promoted)."""

    plan: ReplayPlan
    built: Built
    path: Path | None
    manifest: Manifest | None
    promoted: Manifest | None


def run_rebuild(
    plan: ReplayPlan,
    rebuilder: Rebuilder,
    out: Path | None,
    *,
    scratch_root: Path,
    promoter: Promoter | None = None,
    progress: ReplayProgress | None = None,
    writer: str = "replay",
    clock: Clock = utc_now,
) -> RebuildResult:
    """Carry out ``plan`` into ``out`` and, with ``promoter``, make it live.

    Without ``out`` the build is made in a temporary directory under
    ``scratch_root`` and removed afterwards (only sensible when promoting).
    """
    if out is not None:
        return _rebuild_into(
            plan, rebuilder, out, promoter, progress, writer, clock, keep=True
        )
    if promoter is None:
        raise ValueError("a rebuild that is neither kept nor promoted does nothing")
    scratch_root.mkdir(parents=True, exist_ok=True)
    prefix = f"replay-{plan.collection}-"
    with tempfile.TemporaryDirectory(dir=scratch_root, prefix=prefix) as tmp:
        return _rebuild_into(
            plan,
            rebuilder,
            Path(tmp) / "rebuild",
            promoter,
            progress,
            writer,
            clock,
            keep=False,
        )


def _rebuild_into(
    plan: ReplayPlan,
    rebuilder: Rebuilder,
    out: Path,
    promoter: Promoter | None,
    progress: ReplayProgress | None,
    writer: str,
    clock: Clock,
    *,
    keep: bool,
) -> RebuildResult:
    with StagedOutput(out) as staged:
        built = rebuilder.build(
            plan, staged.partial, scratch=staged.scratch, progress=progress
        )
        promoted = promoter.promote(built, staged.partial) if promoter else None
        if not keep:
            return RebuildResult(plan, built, None, None, promoted)
        manifest = promoted or output_manifest(built, writer, clock)
        path = staged.complete(manifest)
    return RebuildResult(plan, built, path, manifest, promoted)


def output_manifest(built: Built, writer: str, clock: Clock) -> Manifest:
    """The manifest of an unpromoted rebuild (fencing token 0: no lease)."""
    created_at = clock()
    return Manifest(
        collection=built.collection,
        version=new_version_id(created_at),
        parent=built.base.version if built.base else None,
        applied_seq=built.applied_seq,
        first_seq=built.first_seq,
        last_seq=built.applied_seq if built.first_seq else None,
        files=file_entries(built.path),
        digest=built.digest.hexdigest,
        record_count=built.digest.count,
        fencing_token=0,
        writer=writer,
        created_at=created_at,
    )
