"""Entry points for the KCL MultiLangDaemon (see docs/kcl.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chroma_journal.cli._common import fail, out, settings_of


def register(app: typer.Typer) -> None:
    """Add the KCL commands to ``app``."""
    app.command("kcl-processor")(kcl_processor)
    app.command("kcl-properties")(kcl_properties)


def kcl_processor(ctx: typer.Context) -> None:
    """The record processor the daemon starts per shard.

    It speaks the MultiLangDaemon protocol on stdin/stdout and so never
    prints anything; set LOG_FILE to keep its logs out of the daemon's.
    """
    from pipeline.kcl_main import run_processor

    run_processor(settings_of(ctx))


def kcl_properties(
    ctx: typer.Context,
    out_path: Annotated[
        Path, typer.Option("--out", help="Where to write the properties file.")
    ],
) -> None:
    """Write the daemon's properties file from the settings."""
    from pipeline.kcl_main import write_properties
    from pipeline.kcl_properties import KCLConfigError

    try:
        write_properties(settings_of(ctx), out_path)
    except KCLConfigError as error:
        fail(str(error))
    out.print(f"wrote {out_path}")
