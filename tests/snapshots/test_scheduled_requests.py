"""The scheduled snapshot-request Lambda handler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from journal.aws_schema import SNAPSHOT_SCHEDULE_COLLECTIONS_KEY
from journal.scheduled import ScheduleInputError, request_snapshots
from journal.sqlite import SQLiteJournal


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SQLiteJournal]:
    opened = SQLiteJournal(tmp_path / "journal.sqlite3")
    yield opened
    opened.close()


def event(scheduled: str | None = "2026-12-03T16:20:00Z", **extra: object) -> dict:
    body: dict[str, object] = {SNAPSHOT_SCHEDULE_COLLECTIONS_KEY: ["lines", "words"]}
    if scheduled is not None:
        body["scheduled_time"] = scheduled
    return body | extra


def test_one_request_per_collection(journal: SQLiteJournal) -> None:
    result = request_snapshots(journal, event())

    assert result["requests"] == {
        "lines": {"seq": 1, "duplicate": False},
        "words": {"seq": 1, "duplicate": False},
    }
    (request,) = journal.read("words")
    assert request.payload.type == "snapshot_request"
    assert request.idempotency_key == "snapshot-schedule:2026-12-03T16:20:00Z"
    assert request.producer == "snapshot-schedule"


def test_retried_invocation_appends_nothing_twice(journal: SQLiteJournal) -> None:
    request_snapshots(journal, event("2026-12-03T16:20:00Z"))

    retry = request_snapshots(journal, event("2026-12-03T16:20:00.000+00:00"))
    following = request_snapshots(journal, event("2026-12-03T16:25:00Z"))

    assert {c: r["duplicate"] for c, r in retry["requests"].items()} == {
        "lines": True,
        "words": True,
    }
    assert following["requests"]["words"] == {"seq": 2, "duplicate": False}
    assert journal.head("lines") == journal.head("words") == 2


def test_rule_event_time_is_used_when_no_scheduled_time(journal: SQLiteJournal) -> None:
    request_snapshots(journal, event(None, time="2026-12-03T16:20:00Z"))
    retry = request_snapshots(journal, event(None, time="2026-12-03T16:20:00Z"))

    assert retry["requests"]["words"]["duplicate"]


def test_without_any_time_the_request_id_keys_and_a_warning_is_logged(
    journal: SQLiteJournal,
) -> None:
    with capture_logs() as logs:
        request_snapshots(journal, event(None), request_id="abc-123")
        retry = request_snapshots(journal, event(None), request_id="abc-123")

    assert retry["requests"]["lines"]["duplicate"]
    warnings = [e for e in logs if e["event"] == "snapshot_schedule_without_time"]
    assert len(warnings) == 2 and warnings[0]["log_level"] == "warning"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {SNAPSHOT_SCHEDULE_COLLECTIONS_KEY: []},
        {SNAPSHOT_SCHEDULE_COLLECTIONS_KEY: "words"},
        {SNAPSHOT_SCHEDULE_COLLECTIONS_KEY: ["../etc"]},
        {SNAPSHOT_SCHEDULE_COLLECTIONS_KEY: ["words"], "scheduled_time": "noon"},
    ],
)
def test_malformed_input_fails_and_appends_nothing(
    journal: SQLiteJournal, body: dict
) -> None:
    with pytest.raises(ScheduleInputError):
        request_snapshots(journal, body)

    assert journal.collections() == []


def test_lambda_handler_appends_and_never_imports_chromadb(tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "from types import SimpleNamespace\n"
        "from journal.scheduled import handler\n"
        "context = SimpleNamespace(aws_request_id='r')\n"
        "result = handler(json.loads(sys.argv[1]), context)\n"
        "print(json.dumps({'result': result, 'chromadb': 'chromadb' in sys.modules}))\n"
    )
    env = {
        **os.environ,
        "JOURNAL_URL": f"sqlite:///{tmp_path / 'journal.sqlite3'}",
        "LOG_FORMAT": "json",
    }

    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(event())],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )

    output = json.loads(done.stdout.strip().splitlines()[-1])
    assert output["chromadb"] is False
    assert output["result"]["requests"]["words"] == {"seq": 1, "duplicate": False}
