"""Fixtures for the snapshot tests (the rig itself is in ``snapshot_rig``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from snapshot_rig import STORES, Rig, close_rig, make_rig


@pytest.fixture(params=sorted(STORES))
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    """A rig on each object store backend."""
    made = make_rig(request, tmp_path, request.param)
    yield made
    close_rig(made)


@pytest.fixture
def local_rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    """A rig on the local object store only (for the slower tests)."""
    made = make_rig(request, tmp_path, "local")
    yield made
    close_rig(made)
