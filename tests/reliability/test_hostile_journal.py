"""Broken input that reaches the journal, the stream or the snapshots:
rows written behind the event model's back, oversized events, payloads
ChromaDB would refuse, undecodable stream records and corrupted snapshots.

Each must give an error that names the problem; none may make the consumer
apply something it should not, skip a seq, or stop other collections.
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from journal.errors import EventTooLarge
from journal.events import (
    LabelUpdate,
    MetadataUpdate,
    NewEvent,
    RecordsDelete,
    SnapshotRequest,
)
from journal.kinesis import decode_record
from pipeline.restore import restore_snapshot
from pipeline.snapshot_format import (
    SnapshotError,
    file_key,
    manifest_key,
    read_pointer,
)
from pipeline.snapshots import Snapshotter
from tests.reliability.reliability_rig import (
    IMAGE,
    World,
    assert_version_complete,
    rebuild_digest,
    stopped_at,
    word_records,
)

# -- rows written directly into the SQLite journal -----------------------------


def insert_raw(world: World, collection: str, seq: int, text: str, kind: str) -> None:
    with sqlite3.connect(world.root / "journal.sqlite3") as db:
        db.execute(
            "INSERT INTO events (collection, seq, event_id, idempotency_key, type, "
            "recorded_at, envelope) VALUES (?, ?, ?, NULL, ?, ?, ?)",
            (collection, seq, f"raw-{seq}", kind, "2026-01-01T00:00:00.000000", text),
        )


def raw_rows(template: dict[str, Any]) -> dict[str, str]:
    """Row text by kind; ``template`` is a valid metadata_update at seq 3."""
    payload = template["payload"]

    def with_payload(**changes: Any) -> str:
        return json.dumps({**template, "payload": {**payload, **changes}})

    return {
        "future schema version": with_payload(schema_version=2),
        "unknown payload type": with_payload(type="receipt_exploded"),
        "nested metadata": with_payload(changes={"merchant": {"name": "x"}}),
        "empty metadata": with_payload(changes={}),
        "list metadata": with_payload(changes={"tags": ["a", "b"]}),
        "identity key changed": with_payload(changes={"image_id": "other"}),
        "not json": "{'collection': 'x', seq: 3",
        "json but not an object": "[1, 2, 3]",
    }


def fill_around_a_raw_row(world: World, collection: str, text: str) -> None:
    """Seq 1-2 good, seq 3 the raw row, seq 4 good."""
    world.delta(collection, word_records(1))
    world.delta(collection, word_records(2))
    insert_raw(world, collection, 3, text, "metadata_update")
    world.append(
        collection,
        MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"after": 1}),
    )


def template_at_seq_3(world: World) -> dict[str, Any]:
    envelope = world.append(
        "template",
        MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"ok": 1}),
    )
    return {**json.loads(envelope.to_json()), "seq": 3}


def test_unreadable_journal_rows_never_advance_their_collection_past_them(
    world: World, hostile_tally: dict[str, int]
) -> None:
    rows = raw_rows(template_at_seq_3(world))
    names = {kind: f"raw-{index}" for index, kind in enumerate(rows)}
    for kind, text in rows.items():
        fill_around_a_raw_row(world, names[kind], text)
    world.delta("zz-good", word_records(3))
    dumps = {name: len(journal_dump_upto(world, name, 2)) for name in names.values()}

    world.consumer().run(threading.Event(), until_caught_up=True)

    for kind in rows:
        collection = names[kind]
        assert world.applied(collection) < 3, kind  # never past the bad row
        with pytest.raises((ValueError, ValidationError)) as raised:
            list(world.journal.read(collection))
        assert str(raised.value), kind  # an error that says something
        assert dumps[collection] == 2  # the events before it are still there
        hostile_tally[f"journal row: {kind}"] = 1
    assert world.applied("zz-good") == 1
    assert_version_complete(world.shared, "zz-good")


def journal_dump_upto(world: World, collection: str, upto: int) -> list[str]:
    return [e.to_json() for e in world.journal.read(collection, upto=upto)]


def test_an_unreadable_row_stops_its_collection_at_that_seq_and_only_there(
    world: World,
) -> None:
    rows = raw_rows(template_at_seq_3(world))
    fill_around_a_raw_row(world, "raw-future", rows["future schema version"])
    world.delta("zz-good", word_records(3))
    consumer = world.consumer()

    consumer.catch_up()

    assert world.applied("zz-good") == 1
    assert world.applied("raw-future") == 2
    assert stopped_at(consumer, world.journal, "raw-future") == 3
    status = world.status.get("raw-future")
    assert status is not None and status.blocked_seq == 3


def test_a_row_holding_another_collections_event_is_not_applied(
    world: World, hostile_tally: dict[str, int]
) -> None:
    world.delta("victim", word_records(1))
    foreign = world.append(
        "other", MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"forged": 1})
    )
    forged = {**json.loads(foreign.to_json()), "seq": 2}
    insert_raw(world, "victim", 2, json.dumps(forged), "metadata_update")
    hostile_tally["journal row: another collection's event"] = 1
    consumer = world.consumer()

    with contextlib.suppress(Exception):  # refusing loudly is fine too
        consumer.catch_up(["victim"])

    assert world.applied("victim") == 1


# -- events the model refuses --------------------------------------------------


def test_payloads_chromadb_would_refuse_are_refused_by_the_model(
    hostile_tally: dict[str, int],
) -> None:
    cases: dict[str, dict[str, Any]] = {
        "nested metadata": {"changes": {"merchant": {"name": "x"}}},
        "empty metadata": {"changes": {}},
        "list metadata": {"changes": {"tags": ["a"]}},
        "empty-list metadata": {"changes": {"tags": []}},
        "bad metadata key": {"changes": {"Merchant Name": "x"}},
        "identity key": {"changes": {"receipt_id": 2}},
        "path as image id": {"image_id": "../x", "changes": {"a": 1}},
    }
    for kind, fields in cases.items():
        body = {"image_id": IMAGE, "receipt_id": 1, **fields}
        with pytest.raises(ValidationError):
            MetadataUpdate(**body)
        hostile_tally[f"event payload: {kind}"] = 1
    labels: dict[str, dict[str, Any]] = {
        "label in both lists": {"valid_labels": ["TAX"], "invalid_labels": ["TAX"]},
        "lowercase label": {"valid_labels": ["tax"]},
        "word id zero": {"word_id": 0},
    }
    for kind, fields in labels.items():
        body = {"image_id": IMAGE, "receipt_id": 1, "line_id": 1, "word_id": 1}
        with pytest.raises(ValidationError):
            LabelUpdate(**{**body, **fields})
        hostile_tally[f"event payload: {kind}"] = 1
    with pytest.raises(ValidationError):
        RecordsDelete(image_id=IMAGE, receipt_id=1, word_id=3)
    hostile_tally["event payload: word without line"] = 1


def test_oversized_events_are_refused_before_any_write(
    world: World, hostile_tally: dict[str, int]
) -> None:
    huge = MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"note": "x" * 400_000})
    batch = [
        NewEvent(collection="big", payload=SnapshotRequest()),
        NewEvent(collection="big", payload=huge),
    ]
    with pytest.raises(EventTooLarge, match="over the limit"):
        world.journal.append(NewEvent(collection="big", payload=huge))
    with pytest.raises(EventTooLarge):
        world.journal.append_batch(batch)

    assert world.journal.head("big") == 0
    hostile_tally["oversized event (library)"] = 2


def test_the_append_command_refuses_oversized_and_invalid_payloads(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hostile_tally: dict[str, int],
) -> None:
    from chroma_journal.cli import app

    monkeypatch.setattr(
        "chroma_journal.cli._app.configure_logging", lambda **_kwargs: None
    )
    env = {
        "JOURNAL_URL": f"sqlite:///{world.root / 'journal.sqlite3'}",
        "CHROMADB_BUCKET": "",
    }
    bodies = {
        "oversized": {"image_id": IMAGE, "receipt_id": 1, "changes": {"n": "x"}},
        "nested metadata": {"image_id": IMAGE, "receipt_id": 1, "changes": {"n": {}}},
        "empty metadata": {"image_id": IMAGE, "receipt_id": 1, "changes": {}},
        "extra field": {
            "image_id": IMAGE,
            "receipt_id": 1,
            "changes": {"a": 1},
            "x": 1,
        },
        "not an object": [1, 2],
    }
    for kind, body in bodies.items():
        if kind == "oversized":
            body = {**body, "changes": {"n": "x" * 400_000}}  # type: ignore[dict-item]
        source = tmp_path / f"{kind}.json"
        source.write_text(json.dumps(body))
        args = ["append", "metadata_update", "-c", "cli", "-f", str(source)]
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 2, (kind, result.output)
        assert "error:" in result.output, (kind, result.output)
        hostile_tally[f"command line payload: {kind}"] = 1
    assert world.journal.head("cli") == 0


# -- stream records ------------------------------------------------------------


def test_undecodable_stream_records_are_passed_over_and_the_gap_filled(
    world: World, hostile_tally: dict[str, int]
) -> None:
    for receipt in (1, 2, 3):
        world.delta("streamed", word_records(receipt))
    events = list(world.journal.read("streamed"))
    future = json.loads(events[1].to_json())
    future["payload"]["schema_version"] = 9
    garbage: dict[str, bytes] = {
        "empty": b"",
        "binary": bytes(range(256)),
        "truncated json": events[1].to_json().encode()[:40],
        "wrong shape": b'{"seq": 2}',
        "unknown type": events[1].to_json().replace("delta_merge", "bogus").encode(),
        "future version": json.dumps(future).encode(),
        "negative seq": events[1].to_json().replace('"seq":2', '"seq":-2').encode(),
        "hostile collection": events[1]
        .to_json()
        .replace('"streamed"', '"../x"')
        .encode(),
    }
    decoded = [
        decode_record(data, shard_id="shard-0", sequence_number=str(index))
        for index, data in enumerate(garbage.values())
    ]
    assert decoded == [None] * len(garbage)
    for kind in garbage:
        hostile_tally[f"stream record: {kind}"] = 1

    delivered = [events[0], events[2]]  # seq 2 arrived only as garbage
    world.consumer().apply_envelopes("streamed", delivered)

    assert world.applied("streamed") == 3
    live = assert_version_complete(world.shared, "streamed")
    assert live.digest == rebuild_digest(
        world.journal, world.objects, world.root, "streamed"
    )


# -- corrupted snapshots -------------------------------------------------------


def test_a_corrupted_snapshot_is_never_restored(
    world: World, tmp_path: Path, hostile_tally: dict[str, int]
) -> None:
    world.delta("snapped", word_records(1))
    world.append("snapped", SnapshotRequest())
    snapshots = Snapshotter(world.objects, world.journal, world.shared)
    world.consumer(after_promote=snapshots.after_promote).catch_up()
    pointer = read_pointer(world.objects, "snapped")
    assert pointer is not None
    version = pointer.pointer.version
    manifest = json.loads(world.objects.get_bytes(manifest_key("snapped", version)))
    name = max(manifest["files"], key=lambda n: manifest["files"][n]["size"])
    key = file_key("snapped", version, name)
    original = world.objects.get_bytes(key)
    rng = random.Random(3)
    flipped = bytearray(original)
    flipped[rng.randrange(len(flipped))] ^= 0xFF
    corruptions: dict[str, tuple[str, bytes | None]] = {
        "flipped byte": (key, bytes(flipped)),
        "truncated file": (key, original[: len(original) // 2]),
        "missing file": (key, None),
        "manifest not json": (manifest_key("snapped", version), b"{not json"),
        "manifest path traversal": (
            manifest_key("snapped", version),
            json.dumps(
                {**manifest, "files": {"../../escape": manifest["files"][name]}}
            ).encode(),
        ),
    }
    pristine = {k: world.objects.get_bytes(k) for k, _ in corruptions.values()}
    for kind, (target, data) in corruptions.items():
        if data is None:
            world.objects.delete(target)
        else:
            world.objects.put_bytes(target, data)
        dest = tmp_path / f"restored-{len(kind)}-{kind.replace(' ', '-')}"

        with pytest.raises((SnapshotError, ValueError)):
            restore_snapshot(world.objects, "snapped", dest, version=version)

        assert not dest.exists()
        assert not list(tmp_path.rglob("escape"))
        world.objects.put_bytes(target, pristine[target])
        hostile_tally[f"snapshot: {kind}"] = 1
    restore_snapshot(world.objects, "snapped", tmp_path / "fine", version=version)
