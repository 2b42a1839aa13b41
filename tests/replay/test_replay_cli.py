"""The ``replay`` commands, run against a rig through the settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from replay_rig import IMAGE, Rig
from structlog.testing import capture_logs
from typer.testing import CliRunner

from chroma_journal.cli import _replay
from chroma_journal.settings import Settings
from journal.ids import word_id_of
from pipeline.manifest import Manifest


def make_app() -> typer.Typer:
    """A root command like the real one, without configuring logging."""
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = Settings()

    _replay.register(app)
    return app


@pytest.fixture
def cli(caught_up: Rig, monkeypatch: pytest.MonkeyPatch) -> Rig:
    root = caught_up.tmp
    for name, value in {
        "JOURNAL_URL": f"sqlite:///{root}/journal.sqlite3",
        "OBJECT_STORE_URL": f"file://{root}/objects",
        "LEASE_URL": f"file://{root}/leases",
        "STATUS_URL": f"sqlite:///{root}/status.sqlite3",
        "CHROMA_ROOT": str(root / "chroma"),
        "STAGING_ROOT": str(root / "staging"),
        "APPLY_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    return caught_up


def invoke(*args: str) -> tuple[int, str, str]:
    with capture_logs():  # the real root command sends logs to stderr
        result = CliRunner().invoke(make_app(), ["replay", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", ["plan", "rebuild", "verify"])
def test_every_command_explains_itself(command: str) -> None:
    code, out, _ = invoke(command, "--help")

    assert code == 0
    assert "COLLECTION" in out
    assert "--from" in out


def test_rebuild_help_names_its_options() -> None:
    _, out, _ = invoke("rebuild", "--help")

    for option in ("--to-seq", "--at", "--out", "--promote"):
        assert option in out


def test_plan_prints_json(cli: Rig) -> None:
    code, out, _ = invoke("plan", "words", "--to-seq", "9", "--json")

    assert code == 0
    planned = json.loads(out)
    assert planned["target_seq"] == 9
    assert planned["events"] == 9
    assert planned["deltas"] == 4
    assert planned["base"] is None
    assert planned["delta_bytes"] > 0


def test_plan_prints_lines_for_people(cli: Rig) -> None:
    code, out, _ = invoke("plan", "words", "--at", "2026-12-03T16:15:35Z")

    assert code == 0
    assert "rebuild to seq 5 (last event recorded at or before" in out
    assert "base: empty collection" in out
    assert "deltas to download: 3 (14 records" in out


def test_rebuild_writes_the_version_directory(cli: Rig) -> None:
    out_dir = cli.tmp / "rebuilt"

    code, out, _ = invoke("rebuild", "words", "--to-seq", "12", "--out", str(out_dir))

    assert code == 0, out
    assert "rebuilt to seq 12" in out
    manifest = Manifest.read(out_dir)
    assert manifest.applied_seq == 12
    assert manifest.digest == cli.versions_by_seq()[12].digest


def test_rebuild_without_out_writes_under_the_staging_root(cli: Rig) -> None:
    code, _, _ = invoke("rebuild", "words", "--from", "empty")

    assert code == 0
    default = cli.tmp / "staging" / "replay" / "words" / "seq-17"
    assert Manifest.read(default).applied_seq == 17


def test_rebuild_from_a_published_version(cli: Rig) -> None:
    base = cli.versions_by_seq()[15].version

    code, out, err = invoke(
        "rebuild", "words", "--from", base, "--out", str(cli.tmp / "x")
    )

    assert code == 0, err
    assert f"base: version {base} at seq 15" in err
    assert "2 events applied" in out


def test_rebuild_with_promote_makes_the_rebuild_live(cli: Rig) -> None:
    before = cli.shared.live_version("words")

    code, out, _ = invoke("rebuild", "words", "--promote")

    assert code == 0
    live = cli.shared.live_manifest("words")
    assert live is not None and live.parent == before
    assert f"promoted as version {live.version}" in out


def test_rebuild_refuses_a_seq_and_a_time(cli: Rig) -> None:
    code, _, err = invoke("rebuild", "words", "--to-seq", "3", "--at", "2026-12-03")

    assert code == 2
    assert "not both" in err


def test_rebuild_reports_errors_without_a_traceback(cli: Rig) -> None:
    code, _, err = invoke("rebuild", "words", "--to-seq", "99")

    assert code == 2
    assert "outside the journal" in err


def test_verify_exits_zero_when_the_live_version_is_right(cli: Rig) -> None:
    code, out, _ = invoke("verify", "words")

    assert code == 0
    assert "OK" in out


def test_verify_exits_one_naming_the_altered_record(cli: Rig) -> None:
    altered = word_id_of(IMAGE, 4, 1, 2)
    cli.tamper_live(altered, {"category": "forged"})

    code, out, _ = invoke("verify", "words", "--json")

    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert report["changed"] == [altered]


def test_verify_prints_the_differing_ids(cli: Rig) -> None:
    altered = word_id_of(IMAGE, 1, 1, 1)
    cli.tamper_live(altered, {"text": "forged"})

    code, out, _ = invoke("verify", "words")

    assert code == 1
    assert "MISMATCH" in out
    assert f"changed (1): {altered}" in out


def test_rebuild_path_is_relative_to_the_working_directory(
    cli: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(cli.tmp)

    code, _, _ = invoke("rebuild", "words", "--to-seq", "3", "--out", "here")

    assert code == 0
    assert Path(cli.tmp / "here" / "MANIFEST.json").is_file()
