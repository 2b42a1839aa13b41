"""The snapshot commands, on the embedded backends under tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from snapshot_legacy_fixture import (
    LEGACY_VERSION,
    build_legacy_collection,
    upload_legacy,
)
from snapshot_rig import COLLECTION, Rig
from typer.testing import CliRunner, Result

from chroma_journal.cli._snapshots import register
from chroma_journal.settings import Settings
from journal.local_store import LocalObjectStore

Invoke = Callable[..., Result]


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = Settings()

    register(app)
    return app


@pytest.fixture
def run(local_rig: Rig) -> Invoke:
    env = {
        "JOURNAL_URL": f"sqlite:///{local_rig.tmp / 'journal.sqlite3'}",
        "OBJECT_STORE_URL": f"file://{local_rig.tmp / 'objects'}",
        "CHROMA_ROOT": str(local_rig.tmp / "chroma"),
        "STAGING_ROOT": str(local_rig.tmp / "staging"),
        "CHROMADB_BUCKET": "",
    }

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli(), list(args), env=env)

    return invoke


def snapshots(rig: Rig, count: int) -> list[str]:
    consumer = rig.consumer()
    versions = []
    for index in range(count):
        rig.delta(index + 1, words=3, seed=index)
        rig.request()
        versions.append(consumer.catch_up()[0].version)
    return versions


def test_list_shows_each_snapshot_and_marks_the_latest(
    local_rig: Rig, run: Invoke
) -> None:
    versions = snapshots(local_rig, 2)

    result = run("snapshot", "list", "--json")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["version"], r["latest"], r["complete"]) for r in rows] == [
        (versions[0], False, True),
        (versions[1], True, True),
    ]
    assert rows[1]["applied_seq"] == 6 and rows[1]["records"] == 6


def test_show_prints_the_latest_manifest(local_rig: Rig, run: Invoke) -> None:
    (version,) = snapshots(local_rig, 1)

    result = run("snapshot", "show", "--collection", COLLECTION)

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["version"], document["latest"]) == (version, True)
    assert "chroma.sqlite3" in document["files"]


def test_show_without_snapshots_fails_clearly(run: Invoke) -> None:
    result = run("snapshot", "show", "--collection", COLLECTION)

    assert result.exit_code == 2
    assert "no snapshot yet" in result.output


def test_restore_command_writes_a_checked_copy(local_rig: Rig, run: Invoke) -> None:
    (version,) = snapshots(local_rig, 1)
    dest = local_rig.tmp / "restored"

    result = run("snapshot", "restore", "--collection", COLLECTION, "--to", str(dest))

    assert result.exit_code == 0, result.output
    assert version in result.output
    assert (dest / "chroma.sqlite3").is_file()


def test_import_legacy_command_records_the_base_snapshot(
    local_rig: Rig, run: Invoke, tmp_path: Path
) -> None:
    legacy_root = tmp_path / "legacy-bucket"
    chroma_dir = tmp_path / "legacy-build"
    build_legacy_collection(chroma_dir)
    upload_legacy(LocalObjectStore(legacy_root), chroma_dir, "archive")

    result = run(
        "import-legacy",
        "--bucket",
        f"file://{legacy_root}",
        "--collection",
        COLLECTION,
    )
    again = run(
        "import-legacy", "--bucket", f"file://{legacy_root}", "--collection", COLLECTION
    )

    assert result.exit_code == 0, result.output
    assert f"legacy {LEGACY_VERSION} imported as" in result.output
    assert "already imported" in again.output
    assert len(local_rig.events_of("snapshot_recorded")) == 1
