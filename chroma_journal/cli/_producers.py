"""Producer commands: append events, request snapshots, load the demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import Progress

from chroma_journal.cli._common import (
    describe_validation,
    err,
    fail,
    out,
    settings_of,
)
from chroma_journal.wiring import open_journal, open_object_store
from journal.base import AppendResult, Journal
from journal.errors import ChromaJournalError
from journal.events import PRODUCER_TYPES, NewEvent, SnapshotRequest

CollectionOpt = Annotated[
    str, typer.Option("--collection", "-c", help="Collection to append to.")
]


def register(app: typer.Typer) -> None:
    """Add the producer commands to ``app``."""
    app.command("append")(append)
    app.command("request-sync")(request_sync)
    demo = typer.Typer(help="The demo on real receipts (CORD, optionally SROIE).")
    demo.command("load")(demo_load)
    app.add_typer(demo, name="demo")


def _read_json(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as error:
        fail(f"cannot read {source}: {error}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"{source} is not JSON: {error}")


def _build_events(
    kind: str, collection: str, bodies: list[Any], key: str | None, producer: str
) -> list[NewEvent]:
    events = []
    for index, body in enumerate(bodies):
        if not isinstance(body, dict):
            fail(f"payload #{index} must be a JSON object, got {type(body).__name__}")
        event_key = key if key is None or len(bodies) == 1 else f"{key}#{index}"
        try:
            events.append(
                NewEvent(
                    collection=collection,
                    payload={**body, "type": kind},
                    idempotency_key=event_key,
                    producer=producer,
                )
            )
        except ValidationError as error:
            fail(f"payload #{index} is invalid:\n{describe_validation(error)}")
    return events


def _note_new_collection(journal: Journal, collection: str) -> None:
    """A typo in a name would otherwise start a collection silently."""
    if journal.head(collection) == 0:
        known = ", ".join(journal.collections()) or "none yet"
        err.print(
            f"note: {collection!r} has no events yet; this starts a new "
            f"collection (known: {known})",
            highlight=False,
        )


def _report(results: list[AppendResult]) -> None:
    for result in results:
        state = "duplicate of" if result.duplicate else "appended"
        envelope = result.envelope
        out.print(f"{envelope.collection} seq {result.seq}: {state} {envelope.type}")


def append(
    ctx: typer.Context,
    kind: Annotated[
        str, typer.Argument(help=f"Payload kind: {', '.join(sorted(PRODUCER_TYPES))}.")
    ],
    collection: CollectionOpt,
    source: Annotated[
        str,
        typer.Option(
            "--file",
            "-f",
            help="JSON payload (object, or array for one atomic batch); - for stdin.",
        ),
    ] = "-",
    idempotency_key: Annotated[
        str | None, typer.Option(help="Appending the same key again changes nothing.")
    ] = None,
    producer: Annotated[str, typer.Option(help="Who appends.")] = "cli",
) -> None:
    """Append events of one kind, read as JSON, to a collection's journal."""
    if kind not in PRODUCER_TYPES:
        fail(f"unknown kind {kind!r}; one of {', '.join(sorted(PRODUCER_TYPES))}")
    data = _read_json(source)
    bodies = data if isinstance(data, list) else [data]
    if not bodies:
        fail(f"{source} holds an empty array: nothing to append")
    events = _build_events(kind, collection, bodies, idempotency_key, producer)
    try:
        with open_journal(settings_of(ctx)) as journal:
            _note_new_collection(journal, collection)
            _report(journal.append_batch(events))
    except ChromaJournalError as error:
        fail(str(error))


def request_sync(
    ctx: typer.Context,
    collection: CollectionOpt,
    reason: Annotated[str, typer.Option(help="Why; kept in the journal.")] = "",
    idempotency_key: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Ask for a durable snapshot of a collection (appends snapshot_request).

    The consumer takes the snapshot after it applies the request; see
    `snapshot list` once it has run.
    """
    try:
        event = NewEvent(
            collection=collection,
            payload=SnapshotRequest(reason=reason),
            idempotency_key=idempotency_key,
            producer="request-sync",
        )
        with open_journal(settings_of(ctx)) as journal:
            _note_new_collection(journal, collection)
            _report([journal.append(event)])
    except ValidationError as error:
        fail(f"invalid request:\n{describe_validation(error)}")
    except ChromaJournalError as error:
        fail(str(error))


def demo_load(
    ctx: typer.Context,
    cord: Annotated[
        Path | None, typer.Option(help="CORD json folder; default: the shipped sample.")
    ] = None,
    sroie: Annotated[
        Path | None, typer.Option(help="SROIE train folder holding box/ and entities/.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Read at most N receipts.")] = None,
) -> None:
    """Turn receipts into deltas and events and append them (idempotent)."""
    from chroma_journal.demo.loader import load_demo

    settings = settings_of(ctx)
    try:
        with open_journal(settings) as journal, Progress(transient=True) as progress:
            task = progress.add_task("loading receipts", total=None)
            summary = load_demo(
                journal,
                open_object_store(settings),
                cord_dir=cord,
                sroie_dir=sroie,
                limit=limit,
                progress=lambda n: progress.update(task, advance=n),
            )
    except ChromaJournalError as error:
        fail(str(error))
    out.print(summary.describe())
