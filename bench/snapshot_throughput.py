"""Snapshot upload and restore throughput for the demo sample collections.

Loads the shipped receipts (``chroma_journal.demo``), applies them with the
consumer, then times one snapshot upload and one restore (download, sha256
of every file, open a copy with ChromaDB: count and one query) per
collection, against:

- ``moto-inproc``: moto's S3 in this process (no HTTP);
- ``moto-server``: moto's S3 server on loopback (HTTP through botocore);
- ``local``: the local folder store, for comparison.

moto keeps objects in memory; none of these figures say anything about S3
itself. Run: ``.venv/bin/python bench/snapshot_throughput.py``.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto import mock_aws
from moto.server import ThreadedMotoServer

from chroma_journal.demo.loader import load_demo
from journal.local_store import LocalObjectStore
from journal.objectstore import ObjectStore
from journal.s3_store import S3ObjectStore
from journal.sqlite import SQLiteJournal
from pipeline.config import ConsumerConfig
from pipeline.consumer import Consumer
from pipeline.lease_local import LocalLease
from pipeline.restore import download_files, restore_snapshot
from pipeline.snapshot_format import read_manifest
from pipeline.snapshots import Snapshotter
from pipeline.status_sqlite import SQLiteStatusStore
from pipeline.store import SharedStore

_RUNS = iter(range(1_000_000))


def _bucket() -> str:
    """A fresh bucket per run: moto's state outlives a server or mock."""
    return f"bench-snapshots-{next(_RUNS)}"


def build(root: Path) -> tuple[SQLiteJournal, SharedStore]:
    """The demo journal applied by the consumer under ``root``."""
    journal = SQLiteJournal(root / "journal.sqlite3")
    deltas = LocalObjectStore(root / "deltas")
    load_demo(journal, deltas)
    shared = SharedStore(root / "chroma")
    consumer = Consumer(
        journal,
        deltas,
        shared,
        root / "staging",
        LocalLease(root / "leases"),
        SQLiteStatusStore(root / "status.sqlite3"),
        ConsumerConfig(group_commit_max_seconds=0),
        owner="bench",
    )
    started = time.monotonic()
    consumer.catch_up()
    print(f"consumer applied the demo in {time.monotonic() - started:.1f} s")
    consumer.close()
    return journal, shared


def _s3_client(endpoint: str | None) -> Any:
    # Flexible checksums off: see tests/aws/moto_s3.py for the moto quirk.
    config = Config(request_checksum_calculation="when_required")
    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


@contextmanager
def moto_inproc() -> Iterator[ObjectStore]:
    with mock_aws():
        client, bucket = _s3_client(None), _bucket()
        client.create_bucket(Bucket=bucket)
        yield S3ObjectStore(client, bucket)


@contextmanager
def moto_server() -> Iterator[ObjectStore]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client, bucket = _s3_client(f"http://{host}:{port}"), _bucket()
        client.create_bucket(Bucket=bucket)
        yield S3ObjectStore(client, bucket)
    finally:
        server.stop()


@contextmanager
def local(root: Path) -> Iterator[ObjectStore]:
    yield LocalObjectStore(root / _bucket())


def measure(
    journal: SQLiteJournal, shared: SharedStore, objects: ObjectStore, work: Path
) -> list[dict[str, Any]]:
    rows = []
    for collection in shared.collections():
        manifest = shared.live_manifest(collection)
        assert manifest is not None
        snapshotter = Snapshotter(objects, journal, shared)
        started = time.monotonic()
        result = snapshotter.snapshot(manifest)
        upload = time.monotonic() - started
        snap = read_manifest(objects, collection, manifest.version)
        started = time.monotonic()
        download_files(objects, snap, work / f"download-{time.monotonic_ns()}")
        download = time.monotonic() - started
        dest = work / f"restore-{time.monotonic_ns()}"
        started = time.monotonic()
        restore_snapshot(objects, collection, dest, space="cosine")
        restore = time.monotonic() - started
        mb = manifest.total_bytes / 1e6
        rows.append(
            {
                "collection": collection,
                "records": manifest.record_count,
                "files": {n: e.size for n, e in sorted(manifest.files.items())},
                "snapshot_mb": round(mb, 2),
                "outcome": result.outcome.value,
                "upload_s": round(upload, 3),
                "upload_mb_s": round(mb / upload, 1),
                "download_verify_s": round(download, 3),
                "download_verify_mb_s": round(mb / download, 1),
                "restore_s": round(restore, 3),
                "restore_mb_s": round(mb / restore, 1),
            }
        )
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-snap-") as tmp:
        root = Path(tmp)
        journal, shared = build(root)
        stores: dict[str, Callable[[], Any]] = {
            "moto-inproc": moto_inproc,
            "moto-server": moto_server,
            "local": lambda: local(root),
        }
        for label, make in stores.items():
            for attempt in range(2):
                with make() as objects:
                    rows = measure(journal, shared, objects, root / label)
                for row in rows:
                    print(json.dumps({"store": label, "run": attempt + 1, **row}))
        journal.close()


if __name__ == "__main__":
    main()
