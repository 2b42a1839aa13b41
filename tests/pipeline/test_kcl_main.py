"""The processor's entry point keeps stdout for the daemon's protocol."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chroma_journal.settings import Settings
from pipeline.kcl_main import write_properties

CHILD = """
import os
from pipeline.kcl_main import claim_stdout

protocol = claim_stdout()
print("a stray print")
os.write(1, b"a write on file descriptor 1\\n")
protocol.write('{"action": "status", "responseFor": "initialize"}\\n')
protocol.flush()
"""


def test_only_protocol_lines_reach_stdout_after_claiming_it() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True
    )

    assert result.stdout == '{"action": "status", "responseFor": "initialize"}\n'
    assert "a stray print" in result.stderr
    assert "a write on file descriptor 1" in result.stderr


def test_properties_file_is_written_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        kinesis_stream_name="events",
        kcl_application_name="consumer",
        aws_endpoint_url="http://127.0.0.1:4566",
    )
    out = tmp_path / "conf" / "kcl.properties"

    write_properties(settings, out)

    text = out.read_text()
    assert "streamName = events\n" in text
    assert "applicationName = consumer\n" in text
    assert "kinesisEndpoint = http://127.0.0.1:4566\n" in text
