"""Fixtures for the replay tests (the rig itself is in :mod:`replay_rig`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from replay_rig import Rig, append_history, close_rig, copy_rig, make_rig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """An empty rig."""
    rig = make_rig(tmp_path / "rig")
    yield rig
    close_rig(rig)


@pytest.fixture(scope="session")
def history_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, datetime]:
    """A rig holding :func:`append_history`, applied by the consumer (one
    version every three events), closed; built once per session."""
    rig = make_rig(tmp_path_factory.mktemp("history") / "rig")
    append_history(rig)
    rig.consumer().catch_up()
    close_rig(rig)
    return rig.tmp, rig.clock.now


@pytest.fixture
def caught_up(tmp_path: Path, history_template: tuple[Path, datetime]) -> Iterator[Rig]:
    """A private copy of the history template, every version kept, the
    consumer's lease released."""
    rig = copy_rig(history_template, tmp_path / "rig")
    yield rig
    close_rig(rig)
