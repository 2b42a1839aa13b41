"""Fixtures for every test package."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
import structlog

from chroma_journal.logs import configure_logging


@pytest.fixture(autouse=True)
def _uncached_cli_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI configures logging when a test runs it in process; keep its
    loggers uncached and restore structlog's defaults afterwards, so later
    tests can still capture logs."""
    monkeypatch.setattr(
        "chroma_journal.cli._app.configure_logging",
        functools.partial(configure_logging, cache=False),
    )
    yield
    structlog.reset_defaults()
