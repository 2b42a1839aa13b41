"""Fixtures of the consumer tests (defined in :mod:`pipeline_rig`, which the
test modules import by that unique name)."""

from __future__ import annotations

from pipeline_rig import clock, rig

__all__ = ["clock", "rig"]
