"""Progress: a bar on a terminal, log lines otherwise."""

from __future__ import annotations

import io

from replay_rig import Rig
from rich.console import Console
from structlog.testing import capture_logs

from replay.plan import Target
from replay.progress import LogProgress, RichProgress, progress_for
from replay.rebuild import run_rebuild


def terminal(buffer: io.StringIO) -> Console:
    return Console(file=buffer, force_terminal=True, width=140, color_system=None)


def test_rebuild_on_a_terminal_draws_a_progress_bar(caught_up: Rig) -> None:
    buffer = io.StringIO()

    run_rebuild(
        caught_up.plan(Target()),
        caught_up.rebuilder(batch_events=4),
        caught_up.tmp / "out",
        scratch_root=caught_up.tmp / "scratch",
        progress=RichProgress(terminal(buffer)),
    )

    drawn = buffer.getvalue()
    assert "words" in drawn
    assert "━" in drawn  # the bar
    assert "17/17 events" in drawn
    assert "19/19 records merged" in drawn
    assert "0:00:00 left" in drawn
    assert "4/17 events" in drawn  # drawn after the first batch too


def test_progress_is_a_bar_on_a_terminal_and_log_lines_otherwise() -> None:
    assert isinstance(progress_for(terminal(io.StringIO())), RichProgress)
    plain = Console(file=io.StringIO(), force_terminal=False)
    assert isinstance(progress_for(plain), LogProgress)


def test_log_progress_logs_at_intervals_with_the_time_left() -> None:
    ticks = iter([0.0, 5.0, 11.0, 12.0, 30.0])
    progress = LogProgress(interval_s=10, monotonic=lambda: next(ticks))

    with capture_logs() as logs:
        progress.start("words", events=10, records=90)
        progress.advance(events=2, records=18)  # t=5: too soon
        progress.advance(events=3, records=27)  # t=11: logged
        progress.advance(events=1, records=0)  # t=12: too soon
        progress.stop()  # t=30: the final line

    lines = [entry for entry in logs if entry["event"] == "replay_progress"]
    assert [line["events"] for line in lines] == [5, 6]
    assert lines[0]["records"] == 45
    assert lines[0]["seconds_left"] == 11.0  # 50 of 100 units in 11 s
    assert logs[0]["event"] == "replay_started"
