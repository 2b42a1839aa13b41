"""Fixtures of the reliability tests, and the summary they print.

Two tables end the test session's output when their tests ran (pytest's
terminal reporter shows them without ``-s``): the crash matrix (points x
mixes) and the number of hostile inputs tried.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.reliability_rig import World, local_world

_CRASH_TABLE = pytest.StashKey[dict[tuple[str, str], str]]()
_HOSTILE = pytest.StashKey[dict[str, int]]()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The embedded backends under ``tmp_path/world``."""
    built = local_world(tmp_path / "world")
    yield built
    built.close()


@pytest.fixture(scope="session")
def crash_table(request: pytest.FixtureRequest) -> dict[tuple[str, str], str]:
    """(point, mix) -> "equal" or what failed; printed at the end."""
    return request.config.stash.setdefault(_CRASH_TABLE, {})


@pytest.fixture(scope="session")
def hostile_tally(request: pytest.FixtureRequest) -> dict[str, int]:
    """Hostile inputs tried, by kind; printed at the end."""
    return request.config.stash.setdefault(_HOSTILE, {})


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Print the crash matrix and the hostile-input count."""
    table = config.stash.get(_CRASH_TABLE, {})
    if table:
        _print_crash_table(terminalreporter, table)
    tally = config.stash.get(_HOSTILE, {})
    if tally:
        _print_hostile(terminalreporter, tally)


def _print_crash_table(
    reporter: pytest.TerminalReporter, table: dict[tuple[str, str], str]
) -> None:
    rows = list(dict.fromkeys(row for row, _ in table))
    mixes = list(dict.fromkeys(mix for _, mix in table))
    width = max(len(row) for row in rows) + 2
    reporter.section("crash matrix: digest after restart vs clean rebuild")
    reporter.line("".ljust(width) + "".join(mix.ljust(16) for mix in mixes))
    for row in rows:
        cells = [table.get((row, mix), "-") for mix in mixes]
        reporter.line(row.ljust(width) + "".join(c.ljust(16) for c in cells))
    equal = sum(value == "equal" for value in table.values())
    reporter.line(f"{equal} of {len(table)} cells equal ({len(rows)} points)")


def _print_hostile(reporter: pytest.TerminalReporter, tally: dict[str, int]) -> None:
    reporter.section("hostile inputs tried")
    for kind, count in sorted(tally.items()):
        reporter.line(f"{kind.ljust(40)}{count}")
    reporter.line(f"{'total'.ljust(40)}{sum(tally.values())}")
