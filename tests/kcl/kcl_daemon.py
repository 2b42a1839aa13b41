"""Running the real KCL MultiLangDaemon against moto, for the daemon test.

What it needs and why (see ``shared/KCL.md`` for how it was established):
Java, the KCL jars that ``scripts/install-kcl.sh`` installs with
amazon_kclpy, moto over h2c (:mod:`moto_h2c`), CBOR switched off (moto
parses only JSON), and lease items written before the daemon starts, so that
KCL skips its random 1-30 s wait for an empty lease table.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from journal.aws_schema import KCL_LEASE_TABLE_KEY

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kinesis import KinesisClient

MAIN_CLASS = "software.amazon.kinesis.multilang.MultiLangDaemon"
ROOT = Path(__file__).resolve().parents[2]


def missing_requirement() -> str | None:
    """Why the daemon cannot run here, or None when it can."""
    if shutil.which("java") is None:
        return "java is not installed (the KCL daemon is a Java program)"
    if jars_dir() is None:
        return "amazon_kclpy with its jars is not installed; run scripts/install-kcl.sh"
    return None


def jars_dir() -> Path | None:
    """amazon_kclpy's folder of KCL jars, when installed with them."""
    try:
        import amazon_kclpy
    except ImportError:
        return None
    jars = Path(amazon_kclpy.__file__).parent / "jars"
    return jars if any(jars.glob("amazon-kinesis-client-multilang-*.jar")) else None


def processor_command() -> str:
    """The executable the daemon starts per shard: the CLI's ``kcl-processor``."""
    return f"{Path(sys.executable).parent / 'chroma-journal'} kcl-processor"


def create_stream(client: KinesisClient, name: str, shards: int) -> list[Any]:
    """Create a stream, wait until it is active, return its shards."""
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )
    return list(client.list_shards(StreamName=name)["Shards"])


def create_kcl_lease_table(
    client: DynamoDBClient, application: str, shards: list[Any]
) -> None:
    """KCL's lease table with one unowned lease per shard at TRIM_HORIZON."""
    client.create_table(
        TableName=application,
        KeySchema=[{"AttributeName": KCL_LEASE_TABLE_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": KCL_LEASE_TABLE_KEY, "AttributeType": "S"}
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for shard in shards:
        hash_range = shard["HashKeyRange"]
        client.put_item(
            TableName=application,
            Item={
                KCL_LEASE_TABLE_KEY: {"S": shard["ShardId"]},
                "checkpoint": {"S": "TRIM_HORIZON"},
                "checkpointSubSequenceNumber": {"N": "0"},
                "leaseCounter": {"N": "0"},
                "ownerSwitchesSinceCheckpoint": {"N": "0"},
                "startingHashKey": {"S": hash_range["StartingHashKey"]},
                "endingHashKey": {"S": hash_range["EndingHashKey"]},
            },
        )


@dataclass
class Daemon:
    """One MultiLangDaemon process (and the processors it spawns)."""

    properties: Path
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    def start(self) -> None:
        jars = jars_dir()
        assert jars is not None
        command = [
            "java",
            "-Xmx256m",
            "-Daws.cborEnabled=false",
            "-cp",
            f"{jars}/*",
            MAIN_CLASS,
            "--properties-file",
            str(self.properties),
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.properties.parent,
                start_new_session=True,
            )
        self.started_at = time.time()

    def terminate(self, timeout: float = 45.0) -> int:
        """SIGTERM, as ECS stops a task; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """Kill the daemon's process group (it and its processors)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def log_events(path: Path, name: str) -> list[dict[str, Any]]:
    """The processor's JSON log lines named ``name``."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == name:
            found.append(entry)
    return found


def epoch(entry: dict[str, Any]) -> float:
    """A log entry's ISO timestamp as epoch seconds."""
    return datetime.fromisoformat(entry["timestamp"]).timestamp()
