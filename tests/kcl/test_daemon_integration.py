"""The real KCL MultiLangDaemon runs the project's processor against moto.

One test, in phases: 200 events (deltas, metadata, labels, deletes) across
``lines`` and ``words`` go through the DynamoDB journal with Kinesis
publish while the daemon applies them; the live versions must equal a
rebuild of the same journal by the local consumer. Then the daemon gets
SIGTERM, 50 more events are appended (plus one whose publish is skipped, for
the idle catch-up), the daemon restarts, and every event must have been
applied exactly once: digests equal again, and the versions' seq ranges
contiguous without overlap.

It prints the figures the issue asks for (start-up to first applied event,
append-to-promotion latency, duration); run with ``-s`` to see them.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kcl_daemon import (
    Daemon,
    create_kcl_lease_table,
    create_stream,
    epoch,
    log_events,
    missing_requirement,
    processor_command,
)
from kcl_events import EventPlan
from kcl_rig import CONFIG, assert_contiguous, manifest_chain
from moto_h2c import MotoH2CServer

from journal.aws_clients import make_client
from journal.dynamodb import DynamoDBJournal, create_journal_table
from journal.kinesis import KinesisPublisher
from journal.local_store import LocalObjectStore
from pipeline.consumer import Consumer
from pipeline.kcl_properties import KCLConfig, render_properties
from pipeline.lease_dynamodb import create_lease_table
from pipeline.lease_local import LocalLease
from pipeline.status_dynamodb import create_status_table
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore

REASON = missing_requirement()
pytestmark = [
    pytest.mark.kcl,
    pytest.mark.slow,
    pytest.mark.skipif(REASON is not None, reason=str(REASON)),
]

REGION = "us-east-1"
STREAM = "chroma-journal-kcl-test"
APPLICATION = "chroma-journal-kcl-test"
JOURNAL_TABLE = "journal"
LEASE_TABLE = "collection-leases"
STATUS_TABLE = "collection-status"
COLLECTIONS = ("lines", "words")
APPEND_INTERVAL_SECONDS = 0.03
APPLY_TIMEOUT_SECONDS = 60.0


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoH2CServer]:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    server = MotoH2CServer()
    server.start()
    yield server
    server.stop()


class World:
    """The AWS resources, the local folders and the daemon's settings."""

    def __init__(self, tmp: Path, endpoint: str) -> None:
        self.tmp = tmp
        self.endpoint = endpoint
        self.dynamodb = make_client("dynamodb", region=REGION, endpoint_url=endpoint)
        self.kinesis = make_client("kinesis", region=REGION, endpoint_url=endpoint)
        self.objects = LocalObjectStore(tmp / "objects")
        self.shared = SharedStore(tmp / "chroma")
        self.processor_log = tmp / "processor.log"
        (tmp / "build").mkdir()

    def provision(self) -> None:
        shards = create_stream(self.kinesis, STREAM, shards=2)
        create_journal_table(self.dynamodb, JOURNAL_TABLE)
        create_lease_table(self.dynamodb, LEASE_TABLE)
        create_status_table(self.dynamodb, STATUS_TABLE)
        create_kcl_lease_table(self.dynamodb, APPLICATION, shards)

    def journal(self, *, publish: bool = True) -> DynamoDBJournal:
        publisher = KinesisPublisher(self.kinesis, STREAM) if publish else None
        return DynamoDBJournal(self.dynamodb, JOURNAL_TABLE, publisher=publisher)

    def daemon(self) -> Daemon:
        properties = self.tmp / "kcl.properties"
        config = KCLConfig(
            stream_name=STREAM,
            application_name=APPLICATION,
            region=REGION,
            executable=processor_command(),
            endpoint_url=self.endpoint,
            metrics_level="NONE",
            idle_time_between_reads_millis=200,
            failover_time_millis=5_000,
            shard_sync_interval_millis=10_000,
            parent_shard_poll_interval_millis=1_000,
            # Fixed, so that a restart resumes the leases this worker held.
            worker_id="kcl-test-worker",
        )
        properties.write_text(render_properties(config))
        return Daemon(properties, self.daemon_env(), self.tmp / "daemon.log")

    def daemon_env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "CHROMA", "KCL_", "JOURNAL_"))
        }
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION=REGION,
            AWS_ENDPOINT_URL=self.endpoint,
            # The Java SDK sends CBOR to Kinesis unless told otherwise.
            CBOR_ENABLED="false",
            JOURNAL_URL=f"dynamodb://{JOURNAL_TABLE}",
            KINESIS_STREAM_NAME=STREAM,
            LEASE_URL=f"dynamodb://{LEASE_TABLE}",
            STATUS_URL=f"dynamodb://{STATUS_TABLE}",
            OBJECT_STORE_URL=f"file://{self.tmp / 'objects'}",
            CHROMA_ROOT=str(self.tmp / "chroma"),
            STAGING_ROOT=str(self.tmp / "staging"),
            LOG_FILE=str(self.processor_log),
            LOG_FORMAT="json",
            LEASE_TTL_SECONDS="15",
            KCL_IDLE_CATCH_UP_SECONDS="3",
            KCL_WORKER_ID="kcl-test-worker",
        )
        return env

    def applied(self, collection: str) -> int:
        manifest = self.shared.live_manifest(collection)
        return manifest.applied_seq if manifest else 0

    def wait_applied(self, journal: DynamoDBJournal, daemon: Daemon) -> None:
        heads = {c: journal.head(c) for c in COLLECTIONS}
        deadline = time.monotonic() + APPLY_TIMEOUT_SECONDS
        while any(self.applied(c) < heads[c] for c in COLLECTIONS):
            assert daemon.process is not None
            if daemon.process.poll() is not None or time.monotonic() > deadline:
                applied = {c: self.applied(c) for c in COLLECTIONS}
                pytest.fail(
                    f"applied {applied}, journal heads {heads}\n{daemon.tail()}"
                )
            time.sleep(0.05)
        # The processor logs a promotion after the swap the loop above sees
        # (and after settling its working copy); the figures need the line.
        wanted = {(c, head) for c, head in heads.items() if head}
        deadline = time.monotonic() + 15.0
        while not wanted <= promotion_times(self.processor_log).keys():
            if time.monotonic() > deadline:
                pytest.fail(f"the processors never logged promoting {wanted}")
            time.sleep(0.1)

    def wait_logged(self, event: str, matches: Callable[[dict[str, Any]], Any]) -> None:
        deadline = time.monotonic() + 15.0
        while not any(map(matches, log_events(self.processor_log, event))):
            if time.monotonic() > deadline:
                pytest.fail(f"the processors never logged {event}")
            time.sleep(0.1)

    def rebuild_digests(self, journal: DynamoDBJournal) -> dict[str, str]:
        """Digests the local consumer reaches from the same journal."""
        fresh = self.tmp / "rebuild"
        shared = SharedStore(fresh / "chroma")
        status = SQLiteStatusStore(fresh / "status.sqlite3")
        consumer = Consumer(
            journal,
            self.objects,
            shared,
            fresh / "staging",
            LocalLease(fresh / "leases"),
            status,
            CONFIG,
            owner="rebuild",
        )
        try:
            consumer.catch_up(list(COLLECTIONS))
        finally:
            consumer.close()
            status.close()
        digests = {}
        for collection in COLLECTIONS:
            manifest = shared.live_manifest(collection)
            assert manifest is not None
            digests[collection] = manifest.digest
        return digests

    def live_digests(self) -> dict[str, str]:
        digests = {}
        for collection in COLLECTIONS:
            manifest = self.shared.live_manifest(collection)
            assert manifest is not None
            digests[collection] = manifest.digest
        return digests


def append_paced(
    journal: DynamoDBJournal, plan: EventPlan, count: int, first: int = 0
) -> dict[tuple[str, int], float]:
    """Append ``count`` events alternating collections; when each returned."""
    appended = {}
    for index in range(first, first + count):
        event = plan.next(COLLECTIONS[index % 2])
        envelope = journal.append(event).envelope
        appended[(envelope.collection, envelope.seq)] = time.time()
        time.sleep(APPEND_INTERVAL_SECONDS)
    return appended


def promotion_times(log: Path) -> dict[tuple[str, int], float]:
    """When each (collection, seq) was first promoted, from the processor log."""
    promoted: dict[tuple[str, int], float] = {}
    for entry in log_events(log, "promotion_complete"):
        for seq in range(entry["first_seq"], entry["last_seq"] + 1):
            promoted.setdefault((entry["collection"], seq), epoch(entry))
    return promoted


def report(figures: dict[str, float]) -> None:
    lines = [f"  {name}: {value:.3f}" for name, value in figures.items()]
    sys.stderr.write("\nKCL daemon figures (seconds)\n" + "\n".join(lines) + "\n")


@pytest.mark.timeout(180)
def test_daemon_applies_every_event_exactly_once(
    tmp_path: Path, moto_server: MotoH2CServer
) -> None:
    started = time.monotonic()
    world = World(tmp_path, moto_server.endpoint_url)
    world.provision()
    journal = world.journal()
    plan = EventPlan(world.objects, tmp_path / "build")
    daemon = world.daemon()
    try:
        # Phase 1: start the daemon and append the first event at once.
        daemon.start()
        appended = append_paced(journal, plan, 1)
        world.wait_applied(journal, daemon)
        first_applied = min(promotion_times(world.processor_log).values())
        startup = first_applied - daemon.started_at

        # Phase 2: the rest of the 200 events, paced, while the daemon runs.
        appended.update(append_paced(journal, plan, 199, first=1))
        world.wait_applied(journal, daemon)
        assert world.live_digests() == world.rebuild_digests(journal)
        promoted = promotion_times(world.processor_log)
        latencies = [promoted[key] - at for key, at in appended.items()][1:]

        # Phase 3: stop, append while nobody consumes, restart.
        exit_code = daemon.terminate()
        assert exit_code in (0, 143), daemon.tail()
        append_paced(journal, plan, 50, first=200)
        world.journal(publish=False).append(plan.next("lines"))
        daemon.start()
        world.wait_applied(journal, daemon)
        # Only the idle catch-up can have applied the unpublished event.
        world.wait_logged("kcl_catch_up", lambda entry: entry["promoted_batches"])
        assert daemon.terminate() in (0, 143), daemon.tail()
    finally:
        daemon.kill()

    for collection in COLLECTIONS:
        chain = manifest_chain(world.shared, collection)
        assert_contiguous(chain, head=journal.head(collection))
    assert world.live_digests() == world.rebuild_digests(journal)
    report(
        {
            "daemon start to first applied event": startup,
            "append to promotion, median": statistics.median(latencies),
            "append to promotion, p95": statistics.quantiles(latencies, n=20)[-1],
            "append to promotion, max": max(latencies),
            "test duration": time.monotonic() - started,
        }
    )
