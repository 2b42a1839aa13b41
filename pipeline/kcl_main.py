"""Entry points for the KCL consumer: the processor and its properties file.

``chroma-journal kcl-processor`` calls :func:`run_processor`; it is the
``executableName`` the daemon starts, once per shard, and talks to it over
stdin and stdout. ``chroma-journal kcl-properties`` calls
:func:`write_properties`. ``python -m pipeline.kcl_main`` runs the processor
without the CLI.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pipeline.kcl_processor import (
    ChromaRecordProcessor,
    Ownership,
    ProcessorOptions,
    owns_nothing,
)
from pipeline.kcl_properties import KCLConfig, render_properties

if TYPE_CHECKING:
    from chroma_journal.settings import Settings


def write_properties(settings: Settings, out: Path) -> None:
    """Write the daemon's properties file for ``settings`` to ``out``."""
    text = render_properties(KCLConfig.from_settings(settings))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


def run_processor(settings: Settings) -> None:
    """Serve the daemon on stdin/stdout until it closes stdin.

    Logging must already be configured (to a file or stderr).
    """
    from amazon_kclpy import kcl

    protocol_out = claim_stdout()
    ignore_stop_signals()
    processor = build_processor(settings)
    kcl.KCLProcess(
        processor,
        input_file=sys.stdin,
        output_file=protocol_out,
        error_file=sys.stderr,
    ).run()


def build_processor(settings: Settings) -> ChromaRecordProcessor:
    """A record processor wired to the backends the settings name."""
    from chroma_journal.wiring import build_consumer, open_journal

    journal = open_journal(settings)
    options = ProcessorOptions(
        worker_id=worker_id(settings),
        idle_catch_up_seconds=settings.kcl_idle_catch_up_seconds,
    )
    return ChromaRecordProcessor(
        lambda owner: build_consumer(settings, owner=owner),
        options,
        journal_collections=journal.collections,
        ownership=_ownership(settings),
    )


def worker_id(settings: Settings) -> str:
    """``KCL_WORKER_ID`` (or the host name) plus this process's id.

    Each shard gets its own processor process, so the pid tells apart two
    processors of one worker, including a stale one for a shard it re-took.
    """
    return f"{settings.kcl_worker_id or socket.gethostname()}:{os.getpid()}"


def claim_stdout() -> TextIO:
    """Keep file descriptor 1 for the protocol; send everything else to 2.

    A library that prints, or native code writing to fd 1, would corrupt the
    daemon's message stream; after this both ``print`` and fd 1 reach
    stderr, and only the returned file writes to the daemon.
    """
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol_fd, "w", encoding="utf-8", buffering=1)


def ignore_stop_signals() -> None:
    """Leave stopping to the daemon, which closes stdin when it is done.

    A SIGINT or SIGTERM sent to the whole process group (Ctrl-C, some
    container runtimes) would otherwise end the processor before the daemon
    asks it to checkpoint during its own graceful shutdown.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _ownership(settings: Settings) -> Ownership:
    if not settings.kinesis_stream_name:
        return owns_nothing
    from journal.aws_clients import make_client
    from pipeline.kcl_shards import KinesisShardOwnership

    client = make_client(
        "kinesis", region=settings.aws_region, endpoint_url=settings.aws_endpoint_url
    )
    return KinesisShardOwnership(client, settings.kinesis_stream_name)


def main() -> None:
    """Run the processor with settings and logging from the environment."""
    from chroma_journal.logs import configure_logging
    from chroma_journal.settings import Settings

    settings = Settings()
    configure_logging(
        fmt=settings.log_format, level=settings.log_level, file=settings.log_file
    )
    run_processor(settings)


if __name__ == "__main__":
    main()
