"""The consumer image agrees with the task definition and the CLI.

The image cannot be built here (no registry for the base image, no Maven
Central for the KCL jars); checkov scans the Dockerfile and these tests check
what can be checked without building it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from tfmodel import CHECKOV_SCRIPT, DOCKERFILE, ENTRYPOINT, cached_model
from typer.testing import CliRunner


def _dockerfile() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


def test_image_user_equals_the_efs_access_point_posix_user() -> None:
    variables = cached_model().variables
    uid = variables["efs_posix_uid"]["default"]
    gid = variables["efs_posix_gid"]["default"]

    users = re.findall(r"^USER\s+(\S+)", _dockerfile(), flags=re.MULTILINE)

    assert users == [f"{uid}:{gid}"]
    assert f"--uid {uid}" in _dockerfile()
    assert f"--gid {gid}" in _dockerfile()


def test_base_images_are_pinned_and_kclpy_version_is_fixed() -> None:
    bases = re.findall(r"^FROM\s+(\S+)", _dockerfile(), flags=re.MULTILINE)

    assert bases
    assert all(":" in base and not base.endswith(":latest") for base in bases)
    assert re.search(r'"amazon-kclpy==\d+\.\d+\.\d+"', _dockerfile())
    assert "default-jre-headless" in _dockerfile()
    assert "HEALTHCHECK" in _dockerfile()


def test_image_runs_the_entrypoint_script() -> None:
    assert 'ENTRYPOINT ["/app/entrypoint.sh"]' in _dockerfile()
    assert "infra/docker/entrypoint.sh /app/entrypoint.sh" in _dockerfile()


@pytest.mark.parametrize("script", [ENTRYPOINT, CHECKOV_SCRIPT], ids=["entry", "ckv"])
def test_shell_script_is_executable_and_valid(script: os.PathLike[str]) -> None:
    shell = shutil.which("bash")
    assert shell is not None

    result = subprocess.run([shell, "-n", script], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert os.access(script, os.X_OK)


def test_entrypoint_generates_properties_then_execs_the_daemon() -> None:
    text = ENTRYPOINT.read_text(encoding="utf-8")

    generate = text.index('chroma-journal kcl-properties --out "$properties"')
    daemon = text.index("exec java")

    assert generate < daemon
    assert "software.amazon.kinesis.multilang.MultiLangDaemon" in text
    assert '--properties-file "$properties"' in text


def test_cli_has_the_kcl_properties_command_the_entrypoint_calls() -> None:
    from chroma_journal.cli import app

    result = CliRunner().invoke(app, ["kcl-properties", "--help"])

    assert result.exit_code == 0, result.output
    assert "--out" in result.output
