"""Rebuild any collection at any seq from a snapshot plus the journal, and
verify a live version against a rebuild (DESIGN section 9).

Typical use::

    plan = plan_rebuild(journal, "lines", Target(to_seq=120), [snapshots])
    result = run_rebuild(plan, Rebuilder(journal, objects, config), out_dir,
                     scratch_root=staging)
    report = verify_live("lines", journal=journal, shared=shared,
                    rebuilder=rebuilder, sources=[snapshots], scratch_root=staging)
"""

from __future__ import annotations

from replay.builder import Built, Rebuilder, ReplayConfig
from replay.hashes import RecordDiff, RecordIndex
from replay.plan import EMPTY, LATEST, DeltaRead, ReplayPlan, Target, plan_rebuild
from replay.progress import (
    LogProgress,
    NullProgress,
    ReplayProgress,
    RichProgress,
    progress_for,
)
from replay.promote import Promoter
from replay.rebuild import RebuildResult, run_rebuild
from replay.sources import (
    NoSnapshots,
    ObjectStoreSnapshots,
    SnapshotInfo,
    SnapshotSource,
    StoreVersions,
)
from replay.verify import VerifyReport, verify_live

__all__ = [
    "EMPTY",
    "LATEST",
    "Built",
    "DeltaRead",
    "LogProgress",
    "NoSnapshots",
    "NullProgress",
    "ObjectStoreSnapshots",
    "Promoter",
    "RebuildResult",
    "Rebuilder",
    "RecordDiff",
    "RecordIndex",
    "ReplayConfig",
    "ReplayPlan",
    "ReplayProgress",
    "RichProgress",
    "SnapshotInfo",
    "SnapshotSource",
    "StoreVersions",
    "Target",
    "VerifyReport",
    "plan_rebuild",
    "progress_for",
    "run_rebuild",
    "verify_live",
]
