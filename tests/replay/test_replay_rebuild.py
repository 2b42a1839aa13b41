"""Rebuilding a collection equals what the consumer published at that seq."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from replay_rig import (
    IMAGE,
    T0,
    WORDS,
    FailingObjects,
    InterruptingProgress,
    Rig,
    word_records,
)

from journal.events import DeltaMerge, EventSkipped
from journal.ids import word_id_of
from pipeline.digest import digest_of_path
from pipeline.manifest import MANIFEST_NAME, Manifest
from replay.builder import Rebuilder
from replay.errors import OutputExists, ReplayApplyError
from replay.plan import EMPTY, Target
from replay.progress import NullProgress, ReplayProgress
from replay.rebuild import RebuildResult, run_rebuild
from replay.sources import StoreVersions


def rebuild_to(
    rig: Rig,
    target: Target,
    out: Path,
    *,
    rebuilder: Rebuilder | None = None,
    progress: ReplayProgress | None = None,
    **plan_options: Any,
) -> RebuildResult:
    return run_rebuild(
        rig.plan(target, **plan_options),
        rebuilder or rig.rebuilder(),
        out,
        scratch_root=rig.tmp / "scratch",
        progress=progress,
    )


def delta_key(rig: Rig, seq: int) -> str:
    payload = next(rig.journal.read(WORDS, after=seq - 1, upto=seq)).payload
    assert isinstance(payload, DeltaMerge)
    return payload.key


def test_rebuild_to_seq_equals_the_version_the_consumer_published_there(
    caught_up: Rig,
) -> None:
    rig = caught_up
    published = rig.versions_by_seq()
    assert sorted(published) == [3, 6, 9, 12, 15, 17]

    for seq in (3, 9, 12, 17):
        result = rebuild_to(rig, Target(to_seq=seq), rig.tmp / f"out-{seq}")
        assert result.built.applied_seq == seq
        assert result.built.digest.hexdigest == published[seq].digest, seq
        assert result.built.digest.count == published[seq].record_count


def test_rebuild_from_empty_equals_the_live_content(caught_up: Rig) -> None:
    rig = caught_up
    result = rebuild_to(rig, Target(), rig.tmp / "out", base=EMPTY)

    live = rig.shared.live_manifest(WORDS)
    assert live is not None and result.path is not None
    assert result.built.digest.hexdigest == live.digest
    assert digest_of_path(result.path, WORDS) == digest_of_path(
        rig.shared.live_path(WORDS), WORDS
    )


def test_rebuild_from_a_published_version_equals_a_rebuild_from_empty(
    caught_up: Rig,
) -> None:
    rig = caught_up
    sources = [StoreVersions(rig.shared)]

    from_base = rebuild_to(rig, Target(to_seq=14), rig.tmp / "a", sources=sources)
    from_empty = rebuild_to(rig, Target(to_seq=14), rig.tmp / "b", base=EMPTY)

    assert from_base.plan.base is not None
    assert from_base.plan.base.applied_seq == 12
    assert from_base.built.events_applied == 2
    assert from_base.manifest is not None
    assert from_base.manifest.parent == from_base.plan.base.version
    assert from_base.built.digest == from_empty.built.digest


def test_rebuild_at_a_time_picks_the_last_event_recorded_by_then(
    caught_up: Rig,
) -> None:
    rig = caught_up
    history = list(rig.journal.read(WORDS))  # one event a second from T0 + 1 s
    assert history[4].recorded_at == T0.replace(second=T0.second + 5)

    at = history[4].recorded_at.replace(microsecond=500_000)
    by_time = rebuild_to(rig, Target(at=at), rig.tmp / "at")
    by_seq = rebuild_to(rig, Target(to_seq=5), rig.tmp / "seq")

    assert by_time.plan.target_seq == 5
    assert by_time.built.digest == by_seq.built.digest


def test_output_is_a_version_directory_with_a_manifest(caught_up: Rig) -> None:
    rig = caught_up

    result = rebuild_to(rig, Target(to_seq=9), rig.tmp / "out")

    manifest = Manifest.read(rig.tmp / "out")
    assert manifest == result.manifest
    assert manifest.applied_seq == 9
    assert (manifest.first_seq, manifest.last_seq) == (1, 9)
    assert manifest.parent is None
    assert manifest.fencing_token == 0
    assert manifest.digest == result.built.digest.hexdigest
    assert "chroma.sqlite3" in manifest.files
    assert digest_of_path(rig.tmp / "out", WORDS).hexdigest == manifest.digest


def test_rebuild_refuses_an_output_that_holds_a_complete_rebuild(
    caught_up: Rig,
) -> None:
    rig = caught_up
    rebuild_to(rig, Target(to_seq=2), rig.tmp / "out")

    with pytest.raises(OutputExists, match="complete rebuild"):
        rebuild_to(rig, Target(to_seq=3), rig.tmp / "out")
    assert Manifest.read(rig.tmp / "out").applied_seq == 2


def test_failed_rebuild_leaves_no_manifest_and_the_next_run_succeeds(
    caught_up: Rig,
) -> None:
    rig = caught_up
    out = rig.tmp / "out"
    broken = FailingObjects(rig.objects.root, fail_key=delta_key(rig, 9))

    with pytest.raises(ReplayApplyError) as failure:
        rebuild_to(rig, Target(), out, rebuilder=rig.rebuilder(objects=broken))

    assert failure.value.seq == 9
    assert broken.failed_reads == rig.config.apply_attempts
    assert not out.exists()
    assert not list(rig.tmp.glob(f".out*/**/{MANIFEST_NAME}"))
    result = rebuild_to(rig, Target(), out)
    assert Manifest.read(out).applied_seq == result.built.applied_seq == 17


def test_interrupted_rebuild_leaves_nothing_that_looks_complete(caught_up: Rig) -> None:
    rig = caught_up
    out = rig.tmp / "out"
    interrupting = InterruptingProgress(after_batches=2)

    with pytest.raises(KeyboardInterrupt):
        rebuild_to(
            rig,
            Target(),
            out,
            rebuilder=rig.rebuilder(batch_events=4),
            progress=interrupting,
        )

    assert interrupting.stopped
    assert not out.exists()
    assert not (rig.tmp / ".out.partial").exists()
    assert rebuild_to(rig, Target(), out).path == out.absolute()


def test_rebuild_removes_leftovers_of_a_killed_run(caught_up: Rig) -> None:
    rig = caught_up
    leftover = rig.tmp / ".out.partial"
    leftover.mkdir()
    (leftover / "chroma.sqlite3").write_bytes(b"half written")

    result = rebuild_to(rig, Target(to_seq=4), rig.tmp / "out")

    assert not leftover.exists()
    assert result.manifest is not None and result.manifest.applied_seq == 4


def test_skipped_event_is_not_applied_but_counts_towards_applied_seq(
    rig: Rig,
) -> None:
    rig.delta(word_records(1))
    rig.delta(word_records(2))
    rig.objects.delete(delta_key(rig, 2))
    rig.delta(word_records(3, lines=1, words=1))

    with pytest.raises(ReplayApplyError, match="seq 2"):
        rebuild_to(rig, Target(), rig.tmp / "first")

    rig.append(EventSkipped(skipped_seq=2, reason="delta lost"))
    result = rebuild_to(rig, Target(), rig.tmp / "second")

    assert result.built.applied_seq == 4
    assert result.built.skipped == [2]
    assert len(result.built.index) == 6 + 1
    assert word_id_of(IMAGE, 1, 1, 1) in result.built.index
    assert word_id_of(IMAGE, 2, 1, 1) not in result.built.index


def test_skip_appended_after_the_target_is_honoured(rig: Rig) -> None:
    rig.delta(word_records(1))
    rig.delta(word_records(2))
    rig.append(EventSkipped(skipped_seq=2, reason="bad delta"))

    result = rebuild_to(rig, Target(to_seq=2), rig.tmp / "out")

    assert result.built.skipped == [2]
    assert result.built.digest.count == 6


def test_progress_is_told_every_event_and_record(caught_up: Rig) -> None:
    rig = caught_up
    seen = CountingProgress()

    result = rebuild_to(
        rig,
        Target(),
        rig.tmp / "out",
        rebuilder=rig.rebuilder(batch_events=5),
        progress=seen,
    )

    records = 6 + 4 + 4 + 3 + 2
    assert result.plan.records == records
    assert seen.started == (WORDS, 17, records)
    assert (seen.events, seen.records, seen.calls) == (17, records, 4)
    assert seen.stopped


class CountingProgress(NullProgress):
    def __init__(self) -> None:
        self.started: tuple[str, int, int] | None = None
        self.events = 0
        self.records = 0
        self.calls = 0
        self.stopped = False

    def start(self, collection: str, events: int, records: int) -> None:
        self.started = (collection, events, records)

    def advance(self, events: int, records: int) -> None:
        self.events += events
        self.records += records
        self.calls += 1

    def stop(self) -> None:
        self.stopped = True
