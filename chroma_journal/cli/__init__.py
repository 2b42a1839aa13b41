"""The ``chroma-journal`` command line."""

from __future__ import annotations

from chroma_journal.cli._app import app

__all__ = ["app"]
