"""Verifying the live version against a rebuild from the journal."""

from __future__ import annotations

import pytest
from replay_rig import IMAGE, WORDS, Rig, append_history

from journal.ids import word_id_of
from pipeline.errors import NoLiveVersion
from replay.errors import BaseCorrupt
from replay.plan import Target
from replay.rebuild import run_rebuild
from replay.sources import StoreVersions
from replay.verify import VerifyReport, verify_live


def verify_words(rig: Rig) -> VerifyReport:
    return verify_live(
        WORDS,
        journal=rig.journal,
        shared=rig.shared,
        rebuilder=rig.rebuilder(),
        sources=[],
        scratch_root=rig.tmp / "scratch",
    )


def test_verify_passes_on_a_healthy_collection(caught_up: Rig) -> None:
    report = verify_words(caught_up)

    assert report.ok
    assert report.applied_seq == 17
    assert report.live == report.rebuilt
    assert report.recorded_digest == report.live.hexdigest
    assert report.diff.total == 0


def test_verify_fails_naming_a_record_altered_behind_the_consumers_back(
    caught_up: Rig,
) -> None:
    altered = word_id_of(IMAGE, 1, 2, 1)
    tampered = caught_up.tamper_live(altered, {"text": "forged"})

    report = verify_words(caught_up)

    assert not report.ok
    assert report.live_version == tampered.version
    assert report.files_match  # the files match their (lying) manifest
    assert report.recorded_digest == report.rebuilt.hexdigest
    assert report.live.hexdigest != report.rebuilt.hexdigest
    assert report.diff.changed == [altered]
    assert report.diff.total == 1


def test_verify_names_records_missing_from_the_live_version(caught_up: Rig) -> None:
    live = caught_up.shared.live_path(WORDS)
    (live / "chroma.sqlite3").chmod(0o644)
    # Files changed in place no longer match their manifest's sha256.
    with (live / "chroma.sqlite3").open("r+b") as handle:
        handle.seek(0, 2)
        handle.write(b"\0" * 16)

    report = verify_words(caught_up)

    assert not report.ok
    assert not report.files_match


def test_verify_needs_a_live_version(rig: Rig) -> None:
    append_history(rig)

    with pytest.raises(NoLiveVersion):
        verify_words(rig)


def test_a_base_that_does_not_hold_its_recorded_digest_is_refused(
    caught_up: Rig,
) -> None:
    tampered = caught_up.tamper_live(word_id_of(IMAGE, 1, 1, 1), {"text": "x"})
    plan = caught_up.plan(
        Target(), sources=[StoreVersions(caught_up.shared)], base=tampered.version
    )

    with pytest.raises(BaseCorrupt, match="content digest"):
        run_rebuild(
            plan,
            caught_up.rebuilder(),
            caught_up.tmp / "out",
            scratch_root=caught_up.tmp / "scratch",
        )
    assert not (caught_up.tmp / "out").exists()
