"""The command line end to end on the embedded default, in a temp folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chroma_journal.cli import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    values = {
        "JOURNAL_URL": f"sqlite:///{tmp_path}/journal.sqlite3",
        "OBJECT_STORE_URL": f"file://{tmp_path}/objects",
        "LEASE_URL": f"file://{tmp_path}/leases",
        "STATUS_URL": f"sqlite:///{tmp_path}/status.sqlite3",
        "CHROMA_ROOT": str(tmp_path / "chroma"),
        "STAGING_ROOT": str(tmp_path / "staging"),
        "GROUP_COMMIT_MAX_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def status_rows() -> dict[str, dict[str, object]]:
    code, output = cli("status", "--json")
    assert code == 0, output
    return {row["collection"]: row for row in json.loads(output)}


def test_demo_load_run_status_and_query(env: dict[str, str]) -> None:
    code, output = cli("demo", "load", "--limit", "5")
    assert code == 0, output
    assert "events appended" in output

    code, output = cli("run", "--until-caught-up")
    assert code == 0, output
    rows = status_rows()
    assert set(rows) == {"lines", "words"}
    for row in rows.values():
        assert row["lag"] == 0
        assert row["applied_seq"] == row["journal_head"]
        assert isinstance(row["records"], int) and row["records"] > 0

    code, output = cli("query", "words", "TOTAL", "-n", "3")
    assert code == 0, output
    assert "IMAGE#" in output


def test_second_run_changes_nothing(env: dict[str, str]) -> None:
    cli("demo", "load", "--limit", "3")
    cli("run", "--until-caught-up")
    before = {name: row["live_version"] for name, row in status_rows().items()}

    code, output = cli("demo", "load", "--limit", "3")
    assert code == 0, output
    code, output = cli("run", "--until-caught-up")
    assert code == 0, output

    after = {name: row["live_version"] for name, row in status_rows().items()}
    assert after == before


def test_append_reports_the_wrong_field_and_writes_nothing(
    env: dict[str, str],
) -> None:
    bad = json.dumps({"image_id": "abc", "receipt_id": 0, "changes": {"x": 1}})

    code, output = cli("append", "metadata_update", "-c", "words", stdin=bad)

    assert code == 2
    assert "receipt_id" in output
    # Nothing was written: not even an empty journal file.
    assert not Path(env["JOURNAL_URL"].removeprefix("sqlite:///")).exists()
    code, output = cli("status")
    assert code == 1
    assert "no journal at" in output


@pytest.mark.parametrize("name", ["", "..", "a/b", "/abs", "x" * 64])
def test_append_refuses_bad_collection_names(env: dict[str, str], name: str) -> None:
    code, output = cli("append", "snapshot_request", "-c", name, stdin="{}")

    assert code == 2
    assert "collection" in output
    assert not (Path(env["CHROMA_ROOT"]).exists())


def test_append_is_idempotent_with_a_key(env: dict[str, str]) -> None:
    args = ("append", "snapshot_request", "-c", "lines", "--idempotency-key", "k1")
    assert cli(*args, stdin="{}")[1].strip().endswith("appended snapshot_request")
    code, output = cli(*args, stdin="{}")
    assert code == 0
    assert "duplicate of" in output
    assert status_rows()["lines"]["journal_head"] == 1


def test_skip_refuses_a_seq_outside_the_unapplied_range(env: dict[str, str]) -> None:
    cli("request-sync", "-c", "lines")

    code, output = cli("skip", "lines", "--seq", "7", "--reason", "typo")

    assert code == 1
    assert "cannot be skipped" in output


def test_resume_of_a_running_collection_says_so(env: dict[str, str]) -> None:
    code, output = cli("resume", "words")
    assert code == 1
    assert "not stopped" in output


def test_every_command_has_help(env: dict[str, str]) -> None:
    for command in (
        ["--help"],
        ["append", "--help"],
        ["run", "--help"],
        ["status", "--help"],
        ["skip", "--help"],
        ["kcl-properties", "--help"],
    ):
        code, output = cli(*command)
        assert code == 0, (command, output)
        assert "Usage" in output


def test_a_snapshot_restore_with_digest_says_what_it_checked(
    env: dict[str, str], tmp_path: Path
) -> None:
    cli("demo", "load", "--limit", "2")
    cli("request-sync", "--collection", "lines")
    code, output = cli("run", "--until-caught-up")
    assert code == 0, output

    code, output = cli(
        "snapshot", "restore", "-c", "lines", "--to", str(tmp_path / "r"), "--digest"
    )

    assert code == 0, output
    assert "content digest" in output and "matches" in output
