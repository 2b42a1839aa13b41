"""Root command: reads the settings once and configures logging."""

from __future__ import annotations

import enum
from typing import Annotated

import typer
from pydantic import ValidationError

from chroma_journal.cli import _consumer, _kcl, _producers, _replay, _snapshots
from chroma_journal.cli._common import fail
from chroma_journal.logs import configure_logging
from chroma_journal.settings import Settings


class LogLevel(enum.StrEnum):
    """Log levels the command line accepts."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


app = typer.Typer(
    name="chroma-journal",
    help=(
        "Keep ChromaDB collections correct, recent and rebuildable from an "
        "event journal. Configuration comes from environment variables "
        "(JOURNAL_URL, CHROMA_ROOT, OBJECT_STORE_URL, ...); the defaults run "
        "everything embedded under ./var."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    log_level: Annotated[
        LogLevel | None, typer.Option(help="Overrides LOG_LEVEL.", case_sensitive=False)
    ] = None,
    json_logs: Annotated[
        bool, typer.Option("--json-logs", help="Log one JSON object per line.")
    ] = False,
) -> None:
    """Read the settings and set up logging for every subcommand."""
    try:
        settings = Settings()
    except ValidationError as error:
        fail(f"invalid configuration:\n{error}")
    configure_logging(
        fmt="json" if json_logs else settings.log_format,
        level=log_level.value if log_level else settings.log_level,
        file=settings.log_file,
    )
    ctx.obj = settings


_producers.register(app)
_consumer.register(app)
_kcl.register(app)
_snapshots.register(app)
_replay.register(app)
