"""Helpers shared by the subcommands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from chroma_journal.settings import Settings

#: Human output goes to stdout; diagnostics and logs go to stderr. Piped
#: output is not cut to 80 columns: tables stay whole in logs and CI.
out = Console() if Console().is_terminal else Console(width=160)
err = Console(stderr=True)


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """``"42s ago"``, ``"3m ago"``, ``"5h ago"``, ``"2d ago"`` or ``"-"``."""
    if moment is None:
        return "-"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{max(int(seconds), 0)}s ago"


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


def require_existing_journal(settings: Settings) -> None:
    """Stop read-only commands from creating an empty embedded journal when
    they are run from the wrong folder."""
    from chroma_journal.wiring import local_journal_path

    url = settings.journal_url
    path = local_journal_path(url)
    if path is not None and not path.exists():
        fail(
            f"no journal at {path} (JOURNAL_URL={url}); run from the project "
            "folder, set JOURNAL_URL, or append events first",
            code=1,
        )
