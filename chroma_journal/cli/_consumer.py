"""Consumer commands: run, status, gc and query."""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from chroma_journal.cli._common import (
    age,
    fail,
    out,
    require_existing_journal,
    settings_of,
)
from chroma_journal.cli._snapshots import latest_snapshot_status
from chroma_journal.settings import Settings
from chroma_journal.wiring import (
    build_consumer,
    open_journal,
    open_object_store,
    open_shared_store,
    open_status,
)
from journal.errors import ChromaJournalError
from pipeline.parking import SkipIndex, skip_event


def register(app: typer.Typer) -> None:
    """Add the consumer commands to ``app``."""
    app.command("run")(run)
    app.command("status")(status)
    app.command("gc")(gc)
    app.command("query")(query)
    app.command("resume")(resume)
    app.command("skip")(skip)


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
    objects = open_object_store(settings)
    now = datetime.now(UTC)
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
                    "parked_seqs": sorted(SkipIndex(journal).parked(name, applied)),
                    "blocked_seq": mirrored.blocked_seq if mirrored else None,
                    "blocked_error": mirrored.blocked_error if mirrored else None,
                    **latest_snapshot_status(objects, name, now),
                }
            )
    status_store.close()
    return rows


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show per collection the journal head, applied seq, lag and live version."""
    require_existing_journal(settings_of(ctx))
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
        "latest snapshot",
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
            age(_parse(row["last_batch_at"])),
            _snapshot(row),
            _stopped(row),
        )
    out.print(table)


def _snapshot(row: dict[str, Any]) -> str:
    if row["latest_snapshot"] is None:
        return "-"
    taken = datetime.now(UTC) - timedelta(seconds=row["snapshot_age_s"])
    return f"seq {row['snapshot_seq']}, {age(taken)}"


def _stopped(row: dict[str, Any]) -> str:
    parts = []
    if row["blocked_seq"]:
        parts.append(f"[red]at {row['blocked_seq']}: {row['blocked_error']}[/]")
    if row["parked_seqs"]:
        parts.append(f"parked: {', '.join(map(str, row['parked_seqs']))}")
    return "; ".join(parts) or "-"


def gc(ctx: typer.Context) -> None:
    """Remove old versions of every collection.

    Keeps the live version, the newest VERSIONS_KEEP versions, and every
    version younger than VERSIONS_GRACE_SECONDS (readers may still have it
    open).
    """
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
    n: Annotated[
        int, typer.Option("--results", "-n", min=1, help="How many results.")
    ] = 5,
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
            f"{max(distance, 0.0):.3f}",  # cosine can come back as -0.0000001
            record_id,
            str(meta.get("text", "")),
            str(meta.get("valid_labels", "")).strip(","),
        )
    out.print(table)


def resume(
    ctx: typer.Context,
    collection: Annotated[str, typer.Argument(help="The stopped collection.")],
) -> None:
    """Retry the parked event a collection is stopped at.

    Use it after fixing the cause; a running consumer picks it up on its
    next pass.
    """
    settings = settings_of(ctx)
    status_store = open_status(settings)
    current = status_store.get(collection)
    if current is None or current.blocked_seq is None:
        fail(f"{collection} is not stopped at any event", code=1)
    status_store.put(dataclasses.replace(current, blocked_seq=None, blocked_error=None))
    out.print(f"{collection}: resumed; seq {current.blocked_seq} will be retried")


def skip(
    ctx: typer.Context,
    collection: Annotated[str, typer.Argument(help="The stopped collection.")],
    seq: Annotated[int, typer.Option("--seq", help="The event to skip.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the journal.")],
) -> None:
    """Skip an event for good: the consumer and every rebuild move past it.

    Appends an event_skipped record to the journal, after the event it
    names; the decision is part of the collection's history.
    """
    settings = settings_of(ctx)
    try:
        manifest = open_shared_store(settings).live_manifest(collection)
        applied = manifest.applied_seq if manifest else 0
        with open_journal(settings) as journal:
            head = journal.head(collection)
            if not applied < seq <= head:
                fail(
                    f"seq {seq} cannot be skipped: {collection} has applied up to "
                    f"{applied} and its journal ends at {head}",
                    code=1,
                )
            result = journal.append(skip_event(collection, seq, reason, producer="cli"))
    except ChromaJournalError as error:
        fail(str(error))
    state = "already recorded at" if result.duplicate else "recorded at"
    out.print(f"{collection}: skip of seq {seq} {state} seq {result.seq}")
