"""Kill the consumer (SIGKILL) at every step boundary, restart it, and check
that nothing was lost, nothing was applied twice, and the live version was
complete at every moment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_rig import IMAGE, Rig, word_records

from journal.events import LabelUpdate, MetadataUpdate, RecordsDelete, SnapshotRequest
from pipeline.faults import ENV_VAR, parse
from pipeline.manifest import MANIFEST_NAME

DRIVER = Path(__file__).with_name("crash_driver.py")

#: Batches of two: [delta, metadata] [label, delete] [label of a word not yet
#: stored, delta adding it] [snapshot, metadata]; ":N" crashes in a later
#: batch, on a warm working copy. Re-applying batch 3 on a copy that already
#: holds it would label the word, so a dirty copy that is reused shows.
CRASH_POINTS = [
    "workcopy_ready:2",
    "applied_delta_merge",
    "applied_metadata_update:2",
    "applied_label_update:2",
    "applied_records_delete",
    "applied_snapshot_request",
    "client_closed:3",
    "files_published:2",
    "manifest_written:2",
    "link_swapped:2",
    "status_mirrored:2",
    "gc_done:3",
]


def fill(rig: Rig) -> None:
    rig.delta("words", word_records(IMAGE, 1))
    rig.append("words", MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"a": 1}))
    rig.append(
        "words",
        LabelUpdate(
            image_id=IMAGE, receipt_id=1, line_id=1, word_id=1, valid_labels=["TAX"]
        ),
    )
    rig.append(
        "words", RecordsDelete(image_id=IMAGE, receipt_id=1, line_id=2, word_id=3)
    )
    rig.append(
        "words",
        LabelUpdate(
            image_id=IMAGE, receipt_id=2, line_id=1, word_id=1, valid_labels=["DATE"]
        ),
    )
    rig.delta("words", word_records(IMAGE, 2, seed=4))
    rig.append("words", SnapshotRequest())
    rig.append("words", MetadataUpdate(image_id=IMAGE, receipt_id=2, changes={"b": 2}))


def drive(rig: Rig, crash_at: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    if crash_at:
        env[ENV_VAR] = crash_at
    done = subprocess.run(
        [sys.executable, str(DRIVER), str(rig.tmp)],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(done.stderr.decode()[-3000:])
    return done.returncode


def assert_live_version_is_complete(rig: Rig) -> None:
    manifest = rig.shared.live_manifest("words")
    if manifest is None:
        return
    assert rig.live_digest("words").hexdigest == manifest.digest


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_a_crash_at_any_step_loses_nothing_after_a_restart(
    rig: Rig, crash_at: str
) -> None:
    fill(rig)

    assert drive(rig, crash_at) == -signal.SIGKILL
    assert_live_version_is_complete(rig)
    assert drive(rig, None) == 0

    manifest = rig.shared.live_manifest("words")
    assert manifest is not None
    assert manifest.applied_seq == rig.journal.head("words")
    assert manifest.digest == rig.expected("words").hexdigest
    assert_live_version_is_complete(rig)
    versions = rig.shared.root / ".versions" / "words"
    assert not list(versions.glob(".tmp-*"))
    assert all(
        (versions / v / MANIFEST_NAME).is_file() for v in rig.shared.versions("words")
    )
    status = rig.status.get("words")
    assert status is not None and status.applied_seq == manifest.applied_seq


def test_crash_points_parse_with_an_optional_hit_number() -> None:
    assert parse("") is None
    assert parse("link_swapped") == ("link_swapped", 1)
    assert parse("gc_done:3") == ("gc_done", 3)
    with pytest.raises(ValueError, match="starts at 1"):
        parse("gc_done:0")
