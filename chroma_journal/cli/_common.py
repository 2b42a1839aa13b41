"""Helpers shared by the subcommands."""

from __future__ import annotations

from typing import NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from chroma_journal.settings import Settings

#: Human output goes to stdout; diagnostics and logs go to stderr.
out = Console()
err = Console(stderr=True)


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root command read."""
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error on stderr and exit."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def describe_validation(error: ValidationError) -> str:
    """One line per wrong field: ``payload.changes.phone: Input should be ...``."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(event)"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)
