"""The crash matrix over three event mixes, snapshots included.

``tests/pipeline/test_crash_matrix.py`` kills the consumer at 12 points of
one mixed workload. This extends it to the three mixes the reliability issue
names, each with snapshots turned on so that the snapshot steps are crashed
too:

- ``delta-heavy``: deltas only, re-embedding ids earlier deltas stored;
- ``label+meta``: label and receipt-metadata updates (also of words that
  are not stored, and removals of keys) over two receipts;
- ``delete+re-add``: deletes of a receipt, a line and a word, each followed
  in the same batch by a delta that adds the same ids again.

Every cell kills a consumer process (SIGKILL) at one point, checks that the
live version the crash left is complete, restarts the consumer, and checks
that it caught up to the journal head with the digest of a clean rebuild,
that the journal holds exactly the producers' events (plus snapshot
bookkeeping), that no half-written version is left, that the status mirror
agrees and that the latest snapshot is complete. The table of points x
mixes is printed at the end of the test session.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from journal.events import (
    BOOKKEEPING_TYPES,
    LabelUpdate,
    MetadataUpdate,
    RecordsDelete,
    SnapshotRequest,
)
from pipeline.faults import ENV_VAR
from tests.pipeline.crash_driver import CONFIG
from tests.reliability.reliability_rig import (
    IMAGE,
    World,
    local_world,
    rebuild_digest,
    word_records,
)

REPO = Path(__file__).resolve().parents[2]
COLLECTION = "words"
TIMEOUT_S = 180


def _label(receipt: int, line: int, word: int, **kwargs: Any) -> LabelUpdate:
    return LabelUpdate(
        image_id=IMAGE, receipt_id=receipt, line_id=line, word_id=word, **kwargs
    )


def delta_heavy(world: World) -> None:
    """Batches of two (the crash driver's group commit): [r1 r2] [r1' r3]
    [snapshot r2'] [r1'' r4]; primes re-embed ids stored before."""
    world.delta(COLLECTION, word_records(1))
    world.delta(COLLECTION, word_records(2))
    world.delta(COLLECTION, word_records(1, seed=1))
    world.delta(COLLECTION, word_records(3))
    world.append(COLLECTION, SnapshotRequest(reason="mix"))
    world.delta(COLLECTION, word_records(2, seed=1))
    world.delta(COLLECTION, word_records(1, lines=3, seed=2))
    world.delta(COLLECTION, word_records(4))


def label_meta(world: World) -> None:
    """[r1 r2] [meta label] [label meta] [snapshot meta-removal]
    [label-clear label-of-a-missing-word]."""
    world.delta(COLLECTION, word_records(1))
    world.delta(COLLECTION, word_records(2))
    changes: dict[str, Any] = {"merchant_name": "Shop A", "total": 12.5}
    world.append(
        COLLECTION, MetadataUpdate(image_id=IMAGE, receipt_id=1, changes=changes)
    )
    world.append(COLLECTION, _label(1, 1, 1, valid_labels=["GRAND_TOTAL"]))
    world.append(
        COLLECTION,
        _label(2, 2, 3, valid_labels=["DATE"], invalid_labels=["TAX"], status="VALID"),
    )
    world.append(
        COLLECTION,
        MetadataUpdate(image_id=IMAGE, receipt_id=2, changes={"phone": "555"}),
    )
    world.append(COLLECTION, SnapshotRequest(reason="mix"))
    world.append(
        COLLECTION,
        MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"merchant_name": None}),
    )
    world.append(COLLECTION, _label(1, 1, 1, status="NONE"))
    world.append(COLLECTION, _label(9, 1, 1, valid_labels=["TAX"]))


def delete_readd(world: World) -> None:
    """[r1 r2] [delete r1/line1, re-add r1] [delete r2, re-add r2]
    [snapshot label] [delete r1/l2/w3, re-add r1]."""
    world.delta(COLLECTION, word_records(1))
    world.delta(COLLECTION, word_records(2))
    world.append(COLLECTION, RecordsDelete(image_id=IMAGE, receipt_id=1, line_id=1))
    world.delta(COLLECTION, word_records(1, seed=1))
    world.append(COLLECTION, RecordsDelete(image_id=IMAGE, receipt_id=2))
    world.delta(COLLECTION, word_records(2, seed=1))
    world.append(COLLECTION, SnapshotRequest(reason="mix"))
    world.append(COLLECTION, _label(2, 1, 1, valid_labels=["TAX"]))
    world.append(
        COLLECTION, RecordsDelete(image_id=IMAGE, receipt_id=1, line_id=2, word_id=3)
    )
    world.delta(COLLECTION, word_records(1, seed=2))


MIXES: dict[str, Callable[[World], None]] = {
    "delta-heavy": delta_heavy,
    "label+meta": label_meta,
    "delete+re-add": delete_readd,
}

#: Row of the table -> the crash point per mix (``name:N`` is the N-th hit).
#: ":2" and later hits crash on a warm working copy, after a promotion.
POINTS: dict[str, dict[str, str]] = {
    "working copy ready (warm)": dict.fromkeys(MIXES, "workcopy_ready:2"),
    "apply, first kind": {
        "delta-heavy": "applied_delta_merge:1",
        "label+meta": "applied_metadata_update:1",
        "delete+re-add": "applied_records_delete:1",
    },
    "apply, second kind": {
        "delta-heavy": "applied_delta_merge:4",
        "label+meta": "applied_label_update:2",
        "delete+re-add": "applied_delta_merge:3",
    },
    "apply, snapshot request": dict.fromkeys(MIXES, "applied_snapshot_request"),
    "client closed (cold)": dict.fromkeys(MIXES, "client_closed:1"),
    "client closed (warm)": dict.fromkeys(MIXES, "client_closed:3"),
    "files published": dict.fromkeys(MIXES, "files_published:2"),
    "manifest written": dict.fromkeys(MIXES, "manifest_written:2"),
    "link swapped (first)": dict.fromkeys(MIXES, "link_swapped:1"),
    "link swapped": dict.fromkeys(MIXES, "link_swapped:3"),
    "status mirrored": dict.fromkeys(MIXES, "status_mirrored:2"),
    "snapshot file uploaded": dict.fromkeys(MIXES, "snapshot_file_uploaded:2"),
    "snapshot pointer moved": dict.fromkeys(MIXES, "snapshot_pointer_written"),
    "snapshot events appended": dict.fromkeys(MIXES, "snapshot_events_appended"),
    "garbage collected": dict.fromkeys(MIXES, "gc_done:3"),
}


@dataclass(frozen=True)
class Template:
    """A mix's journal and deltas, and the digest of its clean rebuild."""

    root: Path
    producer_events: list[str]
    expected_digest: str


def producer_events(lines: list[str]) -> list[str]:
    """The journal lines producers appended (bookkeeping left out)."""
    return [
        line
        for line in lines
        if json.loads(line)["payload"]["type"] not in BOOKKEEPING_TYPES
    ]


def make_template(root: Path, mix: str) -> Template:
    world = local_world(root)
    try:
        MIXES[mix](world)
        events = [e.to_json() for e in world.journal.read(COLLECTION)]
        expected = rebuild_digest(
            world.journal, world.objects, root / "expected", COLLECTION
        )
    finally:
        world.close()
    shutil.rmtree(root / "expected")
    shutil.rmtree(root / "build", ignore_errors=True)
    assert expected is not None
    return Template(root, events, expected)


def run_driver(root: Path, mode: str, crash_at: str | None) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    if crash_at:
        env[ENV_VAR] = crash_at
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.crash_consumer", str(root), mode],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
        text=True,
    )
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"{mode} exited {done.returncode}: {done.stderr[-3000:]}")
    return done.returncode, done.stdout


def check_cell(template: Template, root: Path, crash_at: str) -> str:
    """Crash at ``crash_at``, restart, and return "" when every check holds,
    else what failed."""
    root.mkdir(parents=True)
    shutil.copy2(template.root / "journal.sqlite3", root / "journal.sqlite3")
    shutil.copytree(template.root / "objects", root / "objects")

    code, _ = run_driver(root, "crash", crash_at)
    if code != -signal.SIGKILL:
        return "point never reached"
    _, stdout = run_driver(root, "restart", None)
    return "; ".join(problems(template, json.loads(stdout.splitlines()[-1])))


def problems(template: Template, report: dict[str, Any]) -> list[str]:
    """Every check of one cell that failed."""
    found: list[str] = []
    crashed, final = report["after_crash"], report["after_restart"]
    if crashed["version"] is not None and crashed["digest"] != crashed["recomputed"]:
        found.append("live version incomplete after the crash")
    if final["applied_seq"] != report["head"]:
        found.append(f"applied {final['applied_seq']} of {report['head']}")
    if final["digest"] != template.expected_digest:
        found.append("digest differs from the clean rebuild")
    if final["digest"] != final["recomputed"]:
        found.append("live files do not match the manifest digest")
    if producer_events(report["journal"]) != template.producer_events:
        found.append("journal events changed")
    if report["store"]["incomplete"]:
        found.append(f"leftovers {report['store']['incomplete']}")
    if report["status_applied"] != final["applied_seq"]:
        found.append("status mirror disagrees")
    if report["blocked"]:
        found.append(f"blocked {report['blocked']}")
    snapshot = report["snapshot"]
    if snapshot["pointer"] is None or snapshot["missing_files"]:
        found.append(f"snapshot incomplete: {snapshot}")
    return found


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    base = tmp_path_factory.mktemp("crash-templates")
    return {mix: make_template(base / f"m{i}", mix) for i, mix in enumerate(MIXES)}


def test_the_crash_driver_config_makes_batches_of_two() -> None:
    # The mixes are laid out in batches of two; the hit numbers rely on it.
    assert CONFIG.group_commit_max_events == 2
    assert CONFIG.versions_grace_seconds == 0


@pytest.mark.slow
@pytest.mark.parametrize("mix", list(MIXES))
def test_a_crash_at_every_step_of_every_mix_loses_nothing(
    mix: str,
    templates: dict[str, Template],
    tmp_path: Path,
    crash_table: dict[tuple[str, str], str],
) -> None:
    template = templates[mix]

    def cell(row: str) -> tuple[str, str]:
        crash_at = POINTS[row][mix]
        slug = "".join(c if c.isalnum() else "-" for c in row)
        return row, check_cell(template, tmp_path / slug, crash_at)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(cell, POINTS))

    for row, failure in results.items():
        crash_table[(row, mix)] = failure or "equal"
    failed = {row: failure for row, failure in results.items() if failure}
    assert not failed, failed
