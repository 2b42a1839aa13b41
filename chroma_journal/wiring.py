"""Builds the backends named by the settings' URLs.

This is the one place that knows which journal, object store, lease and
status backend is in use; everything else receives them ready-made. Cloud
backends are imported lazily so the embedded default needs no AWS set-up.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from journal.base import Journal
from journal.errors import ChromaJournalError
from journal.objectstore import ObjectStore
from pipeline.lease import Lease
from pipeline.status import StatusStore
from pipeline.store import SharedStore

if TYPE_CHECKING:
    from chroma_journal.settings import Settings
    from pipeline.consumer import Consumer


class ConfigurationError(ChromaJournalError):
    """A setting names a backend that does not exist or is malformed."""


def _scheme(url: str, setting: str, allowed: tuple[str, ...]) -> tuple[str, str]:
    parsed = urlparse(url)
    if parsed.scheme not in allowed:
        raise ConfigurationError(
            f"{setting}={url!r}: scheme must be one of {', '.join(allowed)}"
        )
    rest = url[len(parsed.scheme) + 3 :]
    if not rest:
        raise ConfigurationError(f"{setting}={url!r}: nothing after the scheme")
    return parsed.scheme, rest


def _sqlite_path(rest: str) -> Path:
    # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy reads them.
    return Path(rest[1:] if rest.startswith("/") else rest)


def local_journal_path(url: str) -> Path | None:
    """The file of an embedded (SQLite) journal URL; None for other kinds."""
    if not url.startswith("sqlite://"):
        return None
    return _sqlite_path(url[len("sqlite://") :])


def _client(settings: Settings, service: str) -> Any:
    from journal.aws_clients import make_client

    return make_client(
        service, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url
    )


def open_journal(settings: Settings) -> Journal:
    """The journal named by ``JOURNAL_URL`` (with Kinesis publish if set)."""
    scheme, rest = _scheme(settings.journal_url, "JOURNAL_URL", ("sqlite", "dynamodb"))
    if scheme == "sqlite":
        from journal.sqlite import SQLiteJournal

        return SQLiteJournal(_sqlite_path(rest))

    from journal.dynamodb import DynamoDBJournal
    from journal.kinesis import KinesisPublisher

    publisher = None
    if settings.kinesis_stream_name:
        publisher = KinesisPublisher(
            _client(settings, "kinesis"), settings.kinesis_stream_name
        )
    return DynamoDBJournal(_client(settings, "dynamodb"), rest, publisher=publisher)


def open_object_store(settings: Settings) -> ObjectStore:
    """The object store named by ``OBJECT_STORE_URL`` / ``CHROMADB_BUCKET``."""
    scheme, rest = _scheme(
        settings.object_store_url, "OBJECT_STORE_URL", ("file", "s3")
    )
    if scheme == "file":
        from journal.local_store import LocalObjectStore

        return LocalObjectStore(Path(rest))

    from journal.s3_store import S3ObjectStore

    bucket, _, prefix = rest.partition("/")
    return S3ObjectStore(_client(settings, "s3"), bucket, prefix=prefix)


def open_lease(settings: Settings) -> Lease:
    """The collection lease named by ``LEASE_URL``."""
    scheme, rest = _scheme(settings.lease_url, "LEASE_URL", ("file", "dynamodb"))
    if scheme == "file":
        from pipeline.lease_local import LocalLease

        return LocalLease(Path(rest))

    from pipeline.lease_dynamodb import DynamoDBLease

    return DynamoDBLease(_client(settings, "dynamodb"), rest)


def open_status(settings: Settings) -> StatusStore:
    """The status mirror named by ``STATUS_URL``."""
    scheme, rest = _scheme(settings.status_url, "STATUS_URL", ("sqlite", "dynamodb"))
    if scheme == "sqlite":
        from pipeline.status_sqlite import SQLiteStatusStore

        return SQLiteStatusStore(_sqlite_path(rest))

    from pipeline.status_dynamodb import DynamoDBStatusStore

    return DynamoDBStatusStore(_client(settings, "dynamodb"), rest)


def open_shared_store(settings: Settings) -> SharedStore:
    """The versioned collection store under ``CHROMA_ROOT``."""
    return SharedStore(settings.chroma_root)


def default_owner() -> str:
    """A writer id that names this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def build_consumer(settings: Settings, *, owner: str | None = None) -> Consumer:
    """A consumer wired to every backend the settings name, taking snapshots
    after the batches that hold a snapshot request."""
    from pipeline.consumer import Consumer, ConsumerConfig
    from pipeline.snapshots import SnapshotConfig, Snapshotter

    journal = open_journal(settings)
    objects = open_object_store(settings)
    shared = open_shared_store(settings)
    snapshotter = Snapshotter(
        objects, journal, shared, config=SnapshotConfig.from_settings(settings)
    )
    return Consumer(
        journal,
        objects,
        shared,
        settings.staging_root,
        open_lease(settings),
        open_status(settings),
        ConsumerConfig.from_settings(settings),
        owner=owner or default_owner(),
        after_promote=snapshotter.after_promote,
    )
