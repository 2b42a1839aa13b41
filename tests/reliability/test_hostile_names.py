"""Collection names built to escape the store, through every door that takes
one: the event model, the shared store, the lease, the delta writer, the
command line, and a journal row written behind the model's back.

A name becomes a directory, an object key prefix and a ChromaDB collection
name, so each door must refuse it with an error that says what a valid name
is, and nothing may appear outside the folders the test handed out.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from journal.deltas import write_delta
from journal.errors import InvalidCollectionName
from journal.events import NewEvent, SnapshotRequest, validate_collection_name
from tests.reliability.reliability_rig import (
    World,
    assert_version_complete,
    files_under,
    word_records,
)

TOKEN = uuid.uuid4().hex[:10]
HOSTILE_NAMES = [
    "..",
    ".",
    "../escape",
    f"../../cj-{TOKEN}",
    "lines/../../x",
    "/etc",
    f"/tmp/cj-{TOKEN}",
    "a/b",
    "lines/",
    "./lines",
    "a\\b",
    "..\\..\\x",
    "",
    "ab",
    "x" * 64,
    "lines\x00",
    "lines\n",
    "-lines",
    "lines-",
    "_lines",
    "línes",
    " lines",
    "lines ",
    "%2e%2e%2f",
    "~root",
    "lines;rm",
    "$(id)",
    "*",
    "lines:x",
]


def refused(door: Callable[[str], Any], name: str) -> bool:
    try:
        door(name)
    except (InvalidCollectionName, ValidationError) as error:
        return "invalid collection name" in str(error)
    return False


def test_every_library_door_refuses_a_hostile_name(
    world: World, tmp_path: Path, hostile_tally: dict[str, int]
) -> None:
    before = files_under(tmp_path)
    ttl = timedelta(seconds=5)
    doors: dict[str, Callable[[str], Any]] = {
        "validate": validate_collection_name,
        "NewEvent": lambda name: NewEvent(collection=name, payload=SnapshotRequest()),
        "SharedStore.live_version": world.shared.live_version,
        "SharedStore.versions": world.shared.versions,
        "SharedStore.gc": lambda name: world.shared.gc(name, 1, 0),
        "SharedStore.version_path": lambda name: world.shared.version_path(name, "v"),
        "SharedStore.publish": lambda name: world.shared.publish(
            name,
            tmp_path,
            None,
            applied_seq=1,
            first_seq=1,
            last_seq=1,
            digest="0" * 64,
            record_count=0,
            fencing_token=1,
            writer="evil",
        ),
        "LocalLease.acquire": lambda name: world.lease.acquire(name, "evil", ttl),
        "write_delta": lambda name: write_delta(world.objects, name, records),
    }
    records = word_records(1)

    failures = [
        (door, name)
        for door, call in doors.items()
        for name in HOSTILE_NAMES
        if not refused(call, name)
    ]

    assert not failures, failures
    hostile_tally["collection name (library doors)"] = len(doors) * len(HOSTILE_NAMES)
    created = files_under(tmp_path) - before
    assert all(path.startswith("world/") for path in created), sorted(created)
    assert not list(Path("/tmp").glob(f"cj-{TOKEN}*"))
    assert not list(tmp_path.parent.parent.glob(f"cj-{TOKEN}*"))


@pytest.fixture
def cli_env(world: World, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    # The root command configures logging for the process; in-process that
    # would point cached loggers at the runner's stream, closed afterwards.
    monkeypatch.setattr(
        "chroma_journal.cli._app.configure_logging", lambda **_kwargs: None
    )
    root = world.root
    return {
        "JOURNAL_URL": f"sqlite:///{root / 'journal.sqlite3'}",
        "OBJECT_STORE_URL": f"file://{root / 'objects'}",
        "CHROMA_ROOT": str(root / "chroma"),
        "STAGING_ROOT": str(root / "staging"),
        "LEASE_URL": f"file://{root / 'leases'}",
        "STATUS_URL": f"sqlite:///{root / 'status.sqlite3'}",
        "CHROMADB_BUCKET": "",
    }


def cli_commands(name: str, payload: Path, out: Path) -> dict[str, list[str]]:
    return {
        "append": ["append", "metadata_update", "-c", name, "-f", str(payload)],
        "request-sync": ["request-sync", "-c", name],
        "query": ["query", name, "total"],
        "snapshot list": ["snapshot", "list", "-c", name],
        "replay plan": ["replay", "plan", name],
        "replay rebuild": ["replay", "rebuild", name, "--out", str(out)],
        "replay verify": ["replay", "verify", name],
    }


def says_clearly_no(output: str) -> bool:
    """The command's own one-line error (``error: ...``, e.g. "invalid
    collection name" or "has no events in the journal"), or typer refusing
    the argument itself; not a traceback."""
    return "error:" in output or "Usage:" in output


@pytest.mark.slow
def test_every_command_refuses_a_hostile_name_with_a_clear_error(
    world: World,
    tmp_path: Path,
    cli_env: dict[str, str],
    hostile_tally: dict[str, int],
) -> None:
    from chroma_journal.cli import app

    payload = tmp_path / "payload.json"
    payload.write_text(
        json.dumps({"image_id": "i", "receipt_id": 1, "changes": {"a": 1}})
    )
    before = files_under(tmp_path)
    unclear: list[tuple[str, str, str]] = []
    tried = 0
    for name in HOSTILE_NAMES[:12]:
        for command, args in cli_commands(name, payload, tmp_path / "out").items():
            result = CliRunner().invoke(app, args, env=cli_env)
            tried += 1
            clean_exit = isinstance(result.exception, SystemExit | None)
            if result.exit_code == 0 or not clean_exit:
                unclear.append((command, name, repr(result.exception)))
            elif not says_clearly_no(result.output):
                unclear.append((command, name, result.output[-200:]))

    kind = "collection name (command line)"
    hostile_tally[kind] = hostile_tally.get(kind, 0) + tried
    assert world.journal.collections() == []
    created = files_under(tmp_path) - before
    assert all(path.startswith("world/") for path in created), sorted(created)
    assert not unclear, unclear


def test_skip_refuses_a_hostile_name_with_a_clear_error(
    world: World, cli_env: dict[str, str], hostile_tally: dict[str, int]
) -> None:
    from chroma_journal.cli import app

    kind = "collection name (command line)"
    hostile_tally[kind] = hostile_tally.get(kind, 0) + 1
    args = ["skip", "../escape", "--seq", "1", "--reason", "hostile"]
    result = CliRunner().invoke(app, args, env=cli_env)

    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2
    assert "invalid collection name" in result.output.replace("\n", " ")


def insert_raw(
    world: World, collection: str, seq: int, envelope: dict[str, Any]
) -> None:
    """Write a journal row directly, as a buggy or hostile writer could."""
    path = world.root / "journal.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO events (collection, seq, event_id, idempotency_key, type, "
            "recorded_at, envelope) VALUES (?, ?, ?, NULL, ?, ?, ?)",
            (
                collection,
                seq,
                f"raw-{seq}",
                envelope["payload"]["type"],
                "2026-01-01T00:00:00.000000",
                json.dumps(envelope),
            ),
        )


def test_a_journal_row_with_a_hostile_name_stops_nothing_else(
    world: World, tmp_path: Path, hostile_tally: dict[str, int]
) -> None:
    world.delta("good", word_records(1))
    template = json.loads(next(iter(world.journal.read("good"))).to_json())
    names = ["../escape", f"/tmp/cj-{TOKEN}", "a/b"]
    for name in names:
        insert_raw(world, name, 1, {**template, "collection": name})
    world.delta("zz-good", word_records(2))
    before = files_under(tmp_path)
    consumer = world.consumer()

    consumer.run(threading.Event(), until_caught_up=True)

    hostile_tally["collection name (journal row)"] = len(names)
    assert world.applied("good") == 1 and world.applied("zz-good") == 1
    assert_version_complete(world.shared, "zz-good")
    created = files_under(tmp_path) - before
    assert all(path.startswith("world/") for path in created), sorted(created)
    assert not list(Path("/tmp").glob(f"cj-{TOKEN}*"))
