"""Named crash points for the crash-matrix tests.

The consumer calls :func:`point` at every step boundary where a crash leaves
a different state on disk (working copy ready, each event applied, client
closed, files published, manifest written, link swapped, status mirrored,
garbage collected). Normally a call does nothing. When the environment
variable ``CHROMA_JOURNAL_CRASH_AT`` names the point (``name``, or
``name:N`` for its N-th hit in this process), the process sends itself
SIGKILL there: no ``finally`` block, no atexit hook, no flush runs, which is
the closest a test gets to pulling the power cord.

The variable is read once, at the first call, so a running process cannot
be re-armed.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

ENV_VAR = "CHROMA_JOURNAL_CRASH_AT"

_lock = threading.Lock()
_hits: Counter[str] = Counter()
_armed: tuple[str, int] | None = None
_loaded = False


def point(name: str) -> None:
    """Crash here when the environment armed this point; else do nothing."""
    target = _target()
    if target is None or target[0] != name:
        return
    with _lock:
        _hits[name] += 1
        hit = _hits[name]
    if hit == target[1]:
        os.kill(os.getpid(), signal.SIGKILL)


def parse(value: str) -> tuple[str, int] | None:
    """``"name"`` or ``"name:N"`` as (name, N); None for an empty value."""
    value = value.strip()
    if not value:
        return None
    name, _, count = value.partition(":")
    hit = int(count) if count else 1
    if hit < 1:
        raise ValueError(f"{ENV_VAR}={value!r}: the hit number starts at 1")
    return name, hit


def _target() -> tuple[str, int] | None:
    global _armed, _loaded
    if not _loaded:
        with _lock:
            if not _loaded:
                _armed = parse(os.environ.get(ENV_VAR, ""))
                _loaded = True
    return _armed
