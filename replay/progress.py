"""Reporting a rebuild's progress: a bar on a terminal, log lines otherwise.

The work is measured in events applied plus delta records merged, because
merging records is what takes the time (ChromaDB adds about 1,000-1,600
records/s on 2 cores, DESIGN section 6) while other events cost little; the
estimate of the time left then follows the deltas still to come.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

log = structlog.get_logger(__name__)


class ReplayProgress(Protocol):
    """Told what a rebuild has done so far."""

    def start(self, collection: str, events: int, records: int) -> None:
        """The rebuild will apply ``events`` events merging ``records``."""
        ...

    def advance(self, events: int, records: int) -> None:
        """That many more events were applied and records merged."""
        ...

    def stop(self) -> None:
        """The rebuild ended (completed or not)."""
        ...


class NullProgress:
    """Reports nothing."""

    def start(self, collection: str, events: int, records: int) -> None:
        """Ignored."""

    def advance(self, events: int, records: int) -> None:
        """Ignored."""

    def stop(self) -> None:
        """Ignored."""


class _Counts:
    """Done and total events and records of one rebuild."""

    def __init__(self, collection: str, events: int, records: int) -> None:
        self.collection = collection
        self.events = 0
        self.records = 0
        self.total_events = events
        self.total_records = records

    def add(self, events: int, records: int) -> None:
        self.events += events
        self.records += records

    @property
    def work(self) -> int:
        return self.events + self.records

    @property
    def total_work(self) -> int:
        return self.total_events + self.total_records


class RichProgress:
    """A progress bar on ``console``: events applied, records merged and the
    estimated time left."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            # Sized to fit 80 columns with four-digit counts.
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=18),
            TextColumn("{task.fields[events]} events"),
            TextColumn("{task.fields[records]} records merged"),
            TimeRemainingColumn(),
            TextColumn("left"),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None
        self._counts: _Counts | None = None

    def start(self, collection: str, events: int, records: int) -> None:
        """Show the bar."""
        self._counts = _Counts(collection, events, records)
        self._progress.start()
        self._task = self._progress.add_task(
            collection,
            total=max(self._counts.total_work, 1),
            events=self._events(self._counts),
            records=self._records(self._counts),
        )

    def advance(self, events: int, records: int) -> None:
        """Move the bar."""
        if self._task is None or self._counts is None:
            return
        self._counts.add(events, records)
        self._progress.update(
            self._task,
            completed=self._counts.work,
            events=self._events(self._counts),
            records=self._records(self._counts),
            refresh=True,  # once per batch: cheap, and every batch is shown
        )

    def stop(self) -> None:
        """Draw the final state and release the terminal."""
        self._progress.stop()

    @staticmethod
    def _events(counts: _Counts) -> str:
        return f"{counts.events}/{counts.total_events}"

    @staticmethod
    def _records(counts: _Counts) -> str:
        return f"{counts.records}/{counts.total_records}"


class LogProgress:
    """One ``replay_progress`` log line at most every ``interval_s`` seconds,
    and one at the end."""

    def __init__(
        self,
        interval_s: float = 10.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval_s = interval_s
        self._monotonic = monotonic
        self._counts: _Counts | None = None
        self._started = 0.0
        self._last = 0.0

    def start(self, collection: str, events: int, records: int) -> None:
        """Log what is to be done."""
        self._counts = _Counts(collection, events, records)
        self._started = self._last = self._monotonic()
        log.info(
            "replay_started", collection=collection, events=events, records=records
        )

    def advance(self, events: int, records: int) -> None:
        """Log when the interval has passed."""
        if self._counts is None:
            return
        self._counts.add(events, records)
        now = self._monotonic()
        if now - self._last >= self._interval_s:
            self._log(now)

    def stop(self) -> None:
        """Log the final counts."""
        if self._counts is not None:
            self._log(self._monotonic())

    def _log(self, now: float) -> None:
        counts = self._counts
        assert counts is not None
        self._last = now
        elapsed = now - self._started
        rate = counts.work / elapsed if elapsed > 0 else 0.0
        left = (counts.total_work - counts.work) / rate if rate > 0 else None
        log.info(
            "replay_progress",
            collection=counts.collection,
            events=counts.events,
            events_total=counts.total_events,
            records=counts.records,
            records_total=counts.total_records,
            seconds=round(elapsed, 2),
            seconds_left=None if left is None else round(left, 1),
        )


def progress_for(console: Console) -> ReplayProgress:
    """A bar when ``console`` is a terminal, log lines otherwise."""
    return RichProgress(console) if console.is_terminal else LogProgress()
