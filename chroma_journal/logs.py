"""Logging set-up for the entry points (libraries never configure logging).

Local runs get readable console lines on stderr; production gets one JSON
object per line. Either way values travel as structured fields, and nothing
is ever written to stdout, which the KCL processor uses as its protocol
channel.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

import structlog


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the moment of writing, so that
    a logger cached on first use survives a caller swapping the stream (as
    test runners and some embedding hosts do)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(
    *,
    fmt: str = "console",
    level: str = "INFO",
    file: Path | None = None,
    cache: bool = True,
) -> None:
    """Route structlog and stdlib logging to stderr or ``file``.

    ``cache=False`` keeps loggers reconfigurable (tests that run the CLI in
    process and then capture logs need that).
    """
    stream: TextIO | _CurrentStderr
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        stream = file.open("a", encoding="utf-8")
    else:
        stream = _CurrentStderr()
    renderer: structlog.typing.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),  # type: ignore[arg-type]
        cache_logger_on_first_use=cache,
    )
    logging.basicConfig(stream=stream, level=logging.WARNING, force=True)
