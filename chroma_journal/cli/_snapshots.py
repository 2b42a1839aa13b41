"""Snapshot commands: snapshot list|show|restore|prune, and import-legacy."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from chroma_journal.cli._common import fail, out, settings_of
from chroma_journal.settings import Settings
from chroma_journal.wiring import open_journal, open_object_store
from journal.base import utc_now
from journal.errors import ChromaJournalError
from journal.objectstore import ObjectStore
from pipeline.snapshot_format import (
    list_snapshots,
    read_manifest,
    read_pointer,
)

CollectionOpt = Annotated[
    str, typer.Option("--collection", "-c", help="The collection.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer) -> None:
    """Add ``snapshot list|show|restore|prune`` and ``import-legacy`` to ``app``."""
    snapshot = typer.Typer(help="Snapshots in the object store (DESIGN section 7).")
    snapshot.command("list")(list_command)
    snapshot.command("show")(show)
    snapshot.command("restore")(restore)
    snapshot.command("prune")(prune)
    app.add_typer(snapshot, name="snapshot")
    app.command("import-legacy")(import_legacy_command)


def latest_snapshot_status(
    objects: ObjectStore, collection: str, now: datetime
) -> dict[str, Any]:
    """The latest snapshot's version, ``applied_seq`` and age in seconds
    (None each before the first snapshot), for status views."""
    current = read_pointer(objects, collection)
    if current is None:
        return {"latest_snapshot": None, "snapshot_seq": None, "snapshot_age_s": None}
    latest = current.pointer
    return {
        "latest_snapshot": latest.version,
        "snapshot_seq": latest.applied_seq,
        "snapshot_age_s": round((now - latest.moved_at).total_seconds(), 1),
    }


def _collections(settings: Settings, collection: str | None) -> list[str]:
    if collection is not None:
        return [collection]
    with open_journal(settings) as journal:
        return journal.collections()


def _rows(objects: ObjectStore, collection: str, now: datetime) -> list[dict[str, Any]]:
    current = read_pointer(objects, collection)
    latest = current.pointer.version if current else None
    rows = []
    for stored in list_snapshots(objects, collection):
        row: dict[str, Any] = {
            "collection": collection,
            "version": stored.version,
            "complete": stored.complete,
            "latest": stored.version == latest,
            "bytes": stored.total_bytes,
        }
        if stored.complete:
            snap = read_manifest(objects, collection, stored.version)
            row |= {
                "applied_seq": snap.applied_seq,
                "records": snap.record_count,
                "origin": snap.origin,
                "created_at": snap.created_at.isoformat(),
                "age_s": round((now - snap.created_at).total_seconds(), 1),
            }
        rows.append(row)
    return rows


def list_command(
    ctx: typer.Context,
    collection: Annotated[
        str | None,
        typer.Option("--collection", "-c", help="Only this collection."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List snapshots per collection (incomplete uploads are marked)."""
    settings = settings_of(ctx)
    try:
        objects = open_object_store(settings)
        now = utc_now()
        rows = [
            row
            for name in _collections(settings, collection)
            for row in _rows(objects, name, now)
        ]
    except ChromaJournalError as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _print_table(rows)


def _print_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="snapshots")
    for column in (
        "collection",
        "version",
        "applied",
        "records",
        "MB",
        "age",
        "origin",
        "state",
    ):
        table.add_column(column)
    for row in rows:
        state = "[green]latest[/]" if row["latest"] else ""
        if not row["complete"]:
            state = "[yellow]incomplete[/]"
        table.add_row(
            row["collection"],
            row["version"],
            str(row.get("applied_seq", "-")),
            str(row.get("records", "-")),
            f"{row['bytes'] / 1e6:.2f}",
            _age(row.get("age_s")),
            row.get("origin", "-"),
            state,
        )
    out.print(table)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def show(
    ctx: typer.Context,
    collection: CollectionOpt,
    version: Annotated[
        str, typer.Argument(help="A snapshot version, or 'latest'.")
    ] = "latest",
) -> None:
    """Print a snapshot's manifest (default: the one latest.json names)."""
    objects = open_object_store(settings_of(ctx))
    try:
        current = read_pointer(objects, collection)
        if version == "latest":
            if current is None:
                fail(f"{collection} has no snapshot yet")
            version = current.pointer.version
        snap = read_manifest(objects, collection, version)
    except ChromaJournalError as error:
        fail(str(error))
    document = json.loads(snap.model_dump_json())
    document["latest"] = current is not None and current.pointer.version == version
    typer.echo(json.dumps(document, indent=2))


def restore(
    ctx: typer.Context,
    collection: CollectionOpt,
    to: Annotated[Path, typer.Option("--to", help="New or empty directory.")],
    version: Annotated[
        str | None, typer.Option(help="Snapshot version; default: latest.")
    ] = None,
    digest: Annotated[
        bool, typer.Option("--digest", help="Also recompute the content digest.")
    ] = False,
) -> None:
    """Download a snapshot, check every file and open it with ChromaDB."""
    from pipeline.restore import restore_snapshot

    settings = settings_of(ctx)
    try:
        snap = restore_snapshot(
            open_object_store(settings),
            collection,
            to,
            version=version,
            space=settings.hnsw_space,
            scratch_dir=settings.staging_root
            if settings.staging_root.is_dir()
            else None,
            check_digest=digest,
        )
    except (ChromaJournalError, FileExistsError) as error:
        fail(str(error))
    checked = f", content digest {snap.digest[:12]}... matches" if digest else ""
    out.print(
        f"{collection}: restored {snap.version} (applied seq {snap.applied_seq}, "
        f"{snap.record_count} records, {snap.total_bytes / 1e6:.2f} MB{checked}) "
        f"to {to}"
    )


def prune(ctx: typer.Context, collection: CollectionOpt) -> None:
    """Apply retention: keep the newest SNAPSHOT_KEEP and the latest one."""
    from pipeline.snapshot_retention import prune_snapshots
    from pipeline.snapshots import SnapshotConfig

    settings = settings_of(ctx)
    config = SnapshotConfig.from_settings(settings)
    try:
        removed = prune_snapshots(
            open_object_store(settings), collection, config.retention, utc_now()
        )
    except ChromaJournalError as error:
        fail(str(error))
    out.print(f"{collection}: removed {len(removed)} snapshot(s)")


def import_legacy_command(
    ctx: typer.Context,
    bucket: Annotated[
        str,
        typer.Option(help="The previous system's bucket (or an s3:// or file:// URL)."),
    ],
    collection: CollectionOpt,
    version: Annotated[
        str | None,
        typer.Option(help="Legacy version id; default: its latest-pointer.txt."),
    ] = None,
) -> None:
    """Import the previous system's snapshot as the collection's base snapshot."""
    from pipeline.legacy_import import import_legacy

    settings = settings_of(ctx)
    url = bucket if "://" in bucket else f"s3://{bucket}"
    source_settings = settings.model_copy(update={"object_store_url": url})
    try:
        with open_journal(settings) as journal:
            result = import_legacy(
                open_object_store(source_settings),
                collection,
                target=open_object_store(settings),
                journal=journal,
                workdir=settings.staging_root / "legacy-import",
                legacy_version=version,
                space=settings.hnsw_space,
            )
    except ChromaJournalError as error:
        fail(str(error))
    snap = result.manifest
    state = "already imported as" if result.already_imported else "imported as"
    out.print(
        f"{collection}: legacy {result.legacy_version} {state} {snap.version} "
        f"({snap.record_count} records, digest {snap.digest[:12]}...)"
    )
