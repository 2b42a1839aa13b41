"""Consumer commands: run, status, gc and query."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from chroma_journal.cli._common import fail, out, settings_of
from chroma_journal.settings import Settings
from chroma_journal.wiring import (
    build_consumer,
    open_journal,
    open_shared_store,
    open_status,
)
from journal.errors import ChromaJournalError


def register(app: typer.Typer) -> None:
    """Add the consumer commands to ``app``."""
    app.command("run")(run)
    app.command("status")(status)
    app.command("gc")(gc)
    app.command("query")(query)


def _stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM; the consumer stops between batches."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def run(
    ctx: typer.Context,
    until_caught_up: Annotated[
        bool,
        typer.Option(
            "--until-caught-up",
            help="Stop once every collection's applied seq equals its journal head.",
        ),
    ] = False,
) -> None:
    """Tail the journal and apply its events to the collections."""
    settings = settings_of(ctx)
    try:
        consumer = build_consumer(settings)
        consumer.run(_stop_on_signals(), until_caught_up=until_caught_up)
    except ChromaJournalError as error:
        fail(str(error))
    blocked = consumer.blocked()
    if blocked:
        for collection, cause in sorted(blocked.items()):
            out.print(f"[red]{collection} is stopped:[/] {cause}")
        raise typer.Exit(1)


def collect_status(settings: Settings) -> list[dict[str, Any]]:
    """Per collection: head, applied seq, lag, live version, versions, last batch."""
    shared = open_shared_store(settings)
    status_store = open_status(settings)
    with open_journal(settings) as journal:
        names = sorted(set(journal.collections()) | set(shared.collections()))
        rows = []
        for name in names:
            manifest = shared.live_manifest(name)
            mirrored = status_store.get(name)
            head = journal.head(name)
            applied = manifest.applied_seq if manifest else 0
            rows.append(
                {
                    "collection": name,
                    "journal_head": head,
                    "applied_seq": applied,
                    "lag": head - applied,
                    "live_version": manifest.version if manifest else None,
                    "records": manifest.record_count if manifest else 0,
                    "versions_on_disk": len(shared.versions(name)),
                    "last_batch_at": _iso(mirrored.promoted_at if mirrored else None),
                    "last_batch_events": mirrored.last_batch_events if mirrored else 0,
                    "blocked_seq": mirrored.blocked_seq if mirrored else None,
                    "blocked_error": mirrored.blocked_error if mirrored else None,
                }
            )
    status_store.close()
    return rows


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show per collection the journal head, applied seq, lag and live version."""
    try:
        rows = collect_status(settings_of(ctx))
    except ChromaJournalError as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="chroma-journal status")
    for column in (
        "collection",
        "head",
        "applied",
        "lag",
        "records",
        "live version",
        "versions",
        "last batch",
        "stopped at",
    ):
        table.add_column(column)
    for row in rows:
        lag = row["lag"]
        table.add_row(
            row["collection"],
            str(row["journal_head"]),
            str(row["applied_seq"]),
            f"[green]{lag}[/]" if lag == 0 else f"[yellow]{lag}[/]",
            str(row["records"]),
            row["live_version"] or "-",
            str(row["versions_on_disk"]),
            row["last_batch_at"] or "-",
            f"[red]{row['blocked_seq']}: {row['blocked_error']}[/]"
            if row["blocked_seq"]
            else "-",
        )
    out.print(table)


def gc(ctx: typer.Context) -> None:
    """Remove versions that are not live, not among the newest K, and old."""
    settings = settings_of(ctx)
    shared = open_shared_store(settings)
    for name in shared.collections():
        removed = shared.gc(
            name,
            keep=settings.versions_keep,
            grace_seconds=settings.versions_grace_seconds,
        )
        out.print(f"{name}: removed {len(removed)} version(s)")


def query(
    ctx: typer.Context,
    collection: Annotated[str, typer.Argument(help="Collection to search.")],
    text: Annotated[str, typer.Argument(help="Text to embed and search for.")],
    n: Annotated[int, typer.Option("-n", help="How many results.")] = 5,
) -> None:
    """Similarity search over the live version (a private local copy of it)."""
    from chroma_journal.demo.embedder import HashingEmbedder
    from pipeline.reader import open_live

    settings = settings_of(ctx)
    embedding = HashingEmbedder().embed([text])
    try:
        with open_live(
            settings.chroma_root, collection, settings.staging_root / "readers"
        ) as live:
            result = live.query(query_embeddings=embedding, n_results=n)
    except ChromaJournalError as error:
        fail(str(error))
    table = Table(title=f"{collection}: nearest to {text!r}")
    for column in ("distance", "id", "text", "labels"):
        table.add_column(column)
    ids = result["ids"][0]
    distances = (result.get("distances") or [[0.0] * len(ids)])[0]
    metadatas = (result.get("metadatas") or [[{}] * len(ids)])[0]
    for record_id, distance, meta in zip(ids, distances, metadatas, strict=True):
        table.add_row(
            f"{distance:.3f}",
            record_id,
            str(meta.get("text", "")),
            str(meta.get("valid_labels", "")).strip(","),
        )
    out.print(table)
