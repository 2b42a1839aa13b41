"""Replay commands: plan, rebuild and verify a collection from the journal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chroma_journal.cli._common import err, fail, out, settings_of
from chroma_journal.settings import Settings
from chroma_journal.wiring import (
    default_owner,
    open_journal,
    open_lease,
    open_object_store,
    open_shared_store,
)
from journal.base import Journal
from journal.errors import ChromaJournalError
from journal.objectstore import ObjectStore
from pipeline.config import ConsumerConfig
from pipeline.store import SharedStore
from replay.builder import Rebuilder, ReplayConfig
from replay.plan import LATEST, ReplayPlan, Target, plan_rebuild
from replay.progress import progress_for
from replay.promote import Promoter
from replay.rebuild import RebuildResult, run_rebuild
from replay.sources import ObjectStoreSnapshots, SnapshotSource, StoreVersions
from replay.verify import VerifyReport, verify_live

CollectionArg = Annotated[
    str, typer.Argument(metavar="COLLECTION", help="Collection to replay.")
]
ToSeqOpt = Annotated[
    int | None,
    typer.Option(
        "--to-seq", min=0, metavar="N", help="Rebuild up to this seq (default: head)."
    ),
]
AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        metavar="TIME",
        help="Rebuild up to the last event recorded at or before this ISO 8601 "
        "time (UTC when no offset is given).",
    ),
]
FromOpt = Annotated[
    str,
    typer.Option(
        "--from",
        metavar="latest|VERSION|empty",
        help="Start from 'latest' (the newest snapshot at or before the target, "
        "else empty), 'empty', or a snapshot or published version id.",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the ``replay`` command group to ``app``."""
    group = typer.Typer(
        help="Rebuild a collection at any point from snapshots and the journal, "
        "and verify the live version against a rebuild.",
        no_args_is_help=True,
    )
    group.command("plan")(plan)
    group.command("rebuild")(rebuild_command)
    group.command("verify")(verify_command)
    app.add_typer(group, name="replay")


def _say(line: str, *, console: Console = out) -> None:
    """Print one line unwrapped (ids and paths are copied from it)."""
    console.print(line, highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class _Backends:
    journal: Journal
    objects: ObjectStore
    shared: SharedStore
    sources: list[SnapshotSource]
    rebuilder: Rebuilder


def _backends(settings: Settings, journal: Journal) -> _Backends:
    objects = open_object_store(settings)
    shared = open_shared_store(settings)
    config = ReplayConfig.from_consumer(ConsumerConfig.from_settings(settings))
    return _Backends(
        journal=journal,
        objects=objects,
        shared=shared,
        sources=[ObjectStoreSnapshots(objects), StoreVersions(shared)],
        rebuilder=Rebuilder(journal, objects, config),
    )


def _target(to_seq: int | None, at: str | None) -> Target:
    if to_seq is not None and at is not None:
        fail("give --to-seq or --at, not both")
    if at is None:
        return Target(to_seq=to_seq)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        fail(f"--at {at!r} is not an ISO 8601 time such as 2026-12-03T16:15:30Z")
    return Target(at=moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _plan(
    backends: _Backends, collection: str, target: Target, base: str
) -> ReplayPlan:
    if backends.journal.head(collection) == 0:
        known = ", ".join(backends.journal.collections()) or "none"
        fail(f"{collection!r} has no events in the journal (collections: {known})")
    return plan_rebuild(
        backends.journal,
        collection,
        target,
        backends.sources,
        base=base,
        objects=backends.objects,
    )


def plan(
    ctx: typer.Context,
    collection: CollectionArg,
    to_seq: ToSeqOpt = None,
    at: AtOpt = None,
    base: FromOpt = LATEST,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show what a rebuild would read, without doing it.

    Prints the target seq, the snapshot chosen as base, the events and deltas
    to read and their sizes, skipped seqs and deltas missing from the store.
    """
    settings = settings_of(ctx)
    target = _target(to_seq, at)
    try:
        with open_journal(settings) as journal:
            planned = _plan(_backends(settings, journal), collection, target, base)
    except ChromaJournalError as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps(planned.to_dict(), indent=2))
        return
    for line in describe_plan(planned):
        _say(line)


def describe_plan(planned: ReplayPlan) -> list[str]:
    """The plan in a few lines for people."""
    base = planned.base
    first = planned.base_seq + 1
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(planned.by_type.items()))
    lines = [
        f"{planned.collection}: rebuild to seq {planned.target_seq} "
        f"({planned.target_reason}); journal head {planned.head}",
        "base: empty collection"
        if base is None
        else f"base: {base.origin} {base.version} at seq {base.applied_seq}"
        f" ({_size(base.size_bytes)})",
        f"events to read: {planned.events}"
        + (f" (seq {first}..{planned.target_seq}): {kinds}" if planned.events else ""),
        f"deltas to download: {len(planned.deltas)} "
        f"({planned.records} records, {_size(planned.delta_bytes)})",
    ]
    if planned.skipped:
        lines.append(f"skipped seqs: {', '.join(map(str, sorted(planned.skipped)))}")
    for delta in planned.missing_deltas:
        lines.append(f"[red]missing delta[/] seq {delta.seq}: {delta.key}")
    return lines


def _size(size: int | None) -> str:
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def rebuild_command(
    ctx: typer.Context,
    collection: CollectionArg,
    to_seq: ToSeqOpt = None,
    at: AtOpt = None,
    base: FromOpt = LATEST,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Write the rebuilt version directory here (default: "
            "STAGING_ROOT/replay/COLLECTION/seq-N; with --promote alone, "
            "nothing is kept).",
        ),
    ] = None,
    promote: Annotated[
        bool,
        typer.Option(
            "--promote",
            help="Publish the rebuild and make it the live version, under the "
            "collection lease; the consumer continues from its applied seq.",
        ),
    ] = False,
) -> None:
    """Rebuild a collection from a snapshot plus the journal.

    Starts from the newest snapshot at or before the target (or empty) and
    applies the journal after it with the consumer's own apply code, honouring
    skipped events. The output directory gets its MANIFEST.json only once
    complete; an interrupted rebuild is cleaned up by the next one.
    """
    settings = settings_of(ctx)
    target = _target(to_seq, at)
    try:
        with open_journal(settings) as journal:
            result = _run_rebuild(
                settings,
                _backends(settings, journal),
                collection,
                target,
                base,
                out_dir,
                promote,
            )
    except ChromaJournalError as error:
        fail(str(error))
    _print_rebuild(result)


def _run_rebuild(
    settings: Settings,
    backends: _Backends,
    collection: str,
    target: Target,
    base: str,
    out_dir: Path | None,
    promote: bool,
) -> RebuildResult:
    planned = _plan(backends, collection, target, base)
    for line in describe_plan(planned):
        _say(line, console=err)
    if out_dir is None and not promote:
        out_dir = (
            settings.staging_root / "replay" / collection / f"seq-{planned.target_seq}"
        )
    owner = f"replay:{default_owner()}"
    promoter = None
    if promote:
        promoter = Promoter(
            backends.shared,
            open_lease(settings),
            owner=owner,
            lease_ttl_seconds=settings.lease_ttl_seconds,
        )
    return run_rebuild(
        planned,
        backends.rebuilder,
        out_dir,
        scratch_root=settings.staging_root / "replay",
        promoter=promoter,
        progress=progress_for(err),
        writer=owner,
    )


def _print_rebuild(result: RebuildResult) -> None:
    built = result.built
    _say(
        f"{built.collection}: rebuilt to seq {built.applied_seq} in "
        f"{built.seconds:.1f} s: {built.events_applied} events applied, "
        f"{len(built.skipped)} skipped, {built.digest.count} records"
    )
    _say(f"digest: {built.digest.hexdigest}")
    if result.path is not None:
        _say(f"written to {result.path}")
    if result.promoted is not None:
        _say(f"promoted as version {result.promoted.version}")


def verify_command(
    ctx: typer.Context,
    collection: CollectionArg,
    base: FromOpt = LATEST,
    sample: Annotated[
        int, typer.Option(min=1, help="How many differing ids to show.")
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check the live version against a rebuild from the journal.

    Rebuilds to the live version's applied seq in a temporary place and
    compares content digests: exits 0 when equal, 1 naming the first
    differing record ids when not.
    """
    settings = settings_of(ctx)
    try:
        with open_journal(settings) as journal:
            backends = _backends(settings, journal)
            report = verify_live(
                collection,
                journal=journal,
                shared=backends.shared,
                rebuilder=backends.rebuilder,
                sources=backends.sources,
                scratch_root=settings.staging_root / "replay",
                base=base,
                sample=sample,
                progress=progress_for(err),
            )
    except ChromaJournalError as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps(report_dict(report), indent=2))
    else:
        for line in describe_report(report):
            _say(line)
    if not report.ok:
        raise typer.Exit(1)


def report_dict(report: VerifyReport) -> dict[str, object]:
    """A JSON-ready verify report."""
    diff = report.diff
    return {
        "collection": report.collection,
        "ok": report.ok,
        "live_version": report.live_version,
        "applied_seq": report.applied_seq,
        "recorded_digest": report.recorded_digest,
        "live_digest_as_recorded": report.live_as_recorded,
        "live_digest": report.live.hexdigest,
        "rebuilt_digest": report.rebuilt.hexdigest,
        "files_match_manifest": report.files_match,
        "only_in_rebuild": diff.only_left,
        "only_in_live": diff.only_right,
        "changed": diff.changed,
        "differing": diff.total,
        "base": report.base.version if report.base else None,
    }


def describe_report(report: VerifyReport) -> list[str]:
    """The verify outcome in a few lines for people."""
    head = (
        f"{report.collection} {report.live_version} at seq {report.applied_seq}: "
        f"{report.live.count} records live, {report.rebuilt.count} rebuilt"
    )
    if report.ok:
        return [head, f"[green]OK[/]: digest {report.live.hexdigest}"]
    diff = report.diff
    lines = [head, "[red]MISMATCH[/]"]
    if report.recorded_digest != report.live_as_recorded:
        lines.append("the live files do not hold the digest their manifest records")
    if not report.files_match:
        lines.append("the live files differ from the sha256 in their manifest")
    for label, ids, count in (
        ("changed", diff.changed, diff.changed_count),
        ("only in live", diff.only_right, diff.only_right_count),
        ("only in rebuild", diff.only_left, diff.only_left_count),
    ):
        if count:
            lines.append(f"{label} ({count}): {', '.join(ids)}")
    return lines
