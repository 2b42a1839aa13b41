"""Storage faults: a full disk while publishing or staging, S3 and DynamoDB
throttling and transient errors.

The promise: retried, then stopped (parked, or retried on the next poll),
never a half state: the live version stays complete, no half-written
version is ever promoted, leftovers are collected, and once the fault is
gone the consumer reaches the digest of a clean rebuild.

A full disk is a real one where the test may mount a small tmpfs (root);
everywhere it is also injected in-process as ``OSError(ENOSPC)``.
Throttling is injected below botocore (a ``before-send`` hook answering
with AWS's error response), so botocore's own retry handler, configured by
:mod:`journal.aws_clients`, is what is exercised.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import json
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from journal.errors import JournalUnavailable, ObjectStoreError
from journal.events import MetadataUpdate
from journal.objectstore import CasOutcome, ObjectInfo, ObjectStore, Versioned
from pipeline import version_writer
from pipeline.files import copy_hashed
from pipeline.manifest import Manifest
from pipeline.status import CollectionStatus
from pipeline.store import SharedStore, new_version_id
from tests.reliability.reliability_rig import (
    IMAGE,
    World,
    assert_version_complete,
    journal_dump,
    local_world,
    no_leftovers,
    rebuild_digest,
    word_records,
)

COLLECTION = "words"


def promote_first_version(world: World) -> Manifest:
    world.delta(COLLECTION, word_records(1))
    first = world.consumer("first")
    first.catch_up()
    first.close()
    manifest = world.shared.live_manifest(COLLECTION)
    assert manifest is not None
    return manifest


def more_events(world: World) -> None:
    world.append(
        COLLECTION,
        MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"merchant_name": "A"}),
    )
    world.delta(COLLECTION, word_records(2))


def assert_nothing_half_done(world: World, live: Manifest) -> None:
    assert world.shared.live_manifest(COLLECTION) == live
    assert_version_complete(world.shared, COLLECTION)
    assert not no_leftovers(world.shared, COLLECTION)


def assert_recovered(world: World) -> None:
    assert world.applied(COLLECTION) == world.journal.head(COLLECTION)
    live = assert_version_complete(world.shared, COLLECTION)
    expected = rebuild_digest(world.journal, world.objects, world.root, COLLECTION)
    assert live.digest == expected
    assert not no_leftovers(world.shared, COLLECTION)


# -- a real full disk (tmpfs) --------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_up(mount: Path, leave: int) -> Path:
    """Fill ``mount`` until only about ``leave`` bytes are free."""
    filler = mount / "filler"
    free = shutil.disk_usage(mount).free
    with filler.open("wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.slow
def test_a_full_shared_store_stops_the_publish_and_nothing_half_written_stays(
    world: World, small_tmpfs: Path
) -> None:
    world.shared = SharedStore(small_tmpfs / "chroma")
    live = promote_first_version(world)
    more_events(world)
    filler = fill_up(small_tmpfs, leave=64 * 1024)
    journal_before = journal_dump(world.journal, COLLECTION)
    consumer = world.consumer()

    with pytest.raises(OSError) as raised:
        consumer.catch_up()

    assert raised.value.errno == errno.ENOSPC
    assert_nothing_half_done(world, live)
    # A full disk is not the event's fault: nothing is parked in the journal.
    assert journal_dump(world.journal, COLLECTION) == journal_before
    consumer.run(threading.Event(), until_caught_up=True)  # retried, still full
    assert_nothing_half_done(world, live)

    filler.unlink()
    consumer.catch_up()
    assert_recovered(world)


@pytest.mark.slow
def test_a_full_staging_disk_stops_the_collection_until_space_is_back(
    tmp_path: Path, small_tmpfs: Path
) -> None:
    world = local_world(tmp_path / "world")
    try:
        live = promote_first_version(world)
        more_events(world)
        filler = fill_up(small_tmpfs, leave=32 * 1024)
        consumer = world.consumer("full", staging_root=small_tmpfs / "staging")

        # Filling up while the working copy is rebuilt is retried on the next
        # poll; filling up inside ChromaDB fails the event, which is parked.
        consumer.run(threading.Event(), until_caught_up=True)

        assert world.applied(COLLECTION) < world.journal.head(COLLECTION)
        assert_nothing_half_done_or_advanced(world, live)
        filler.unlink()
        status = world.status.get(COLLECTION)
        if status is not None and status.blocked_seq is not None:
            world.status.put(dataclasses.replace(status, blocked_seq=None))
        consumer.run(threading.Event(), until_caught_up=True)
        assert_recovered(world)
    finally:
        world.close()


def assert_nothing_half_done_or_advanced(world: World, first: Manifest) -> None:
    """Events before the failing one may be promoted; whatever is live is
    complete and nothing half-written is left."""
    live = world.shared.live_manifest(COLLECTION)
    assert live is not None and live.applied_seq >= first.applied_seq
    assert_version_complete(world.shared, COLLECTION)
    assert not no_leftovers(world.shared, COLLECTION)


# -- ENOSPC injected in-process ------------------------------------------------


def enospc(*_args: Any, **_kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def failing_after(calls: int, real: Callable[..., Any]) -> Callable[..., Any]:
    """``real`` for the first ``calls`` calls, then ENOSPC."""
    counter = itertools.count()

    def call(*args: Any, **kwargs: Any) -> Any:
        if next(counter) >= calls:
            enospc()
        return real(*args, **kwargs)

    return call


INJECTIONS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "first file copy": lambda mp: mp.setattr(version_writer, "copy_hashed", enospc),
    "second file copy": lambda mp: mp.setattr(
        version_writer,
        "copy_hashed",
        failing_after(1, copy_hashed),
    ),
    "manifest write": lambda mp: mp.setattr(Manifest, "write", enospc),
    "read-only seal": lambda mp: mp.setattr("pipeline.store.seal_tree", enospc),
    "link creation": lambda mp: mp.setattr(Path, "symlink_to", enospc),
    "link rename": lambda mp: mp.setattr(Path, "replace", enospc),
}


@pytest.mark.parametrize("where", list(INJECTIONS))
def test_enospc_while_publishing_or_promoting_never_promotes_half_a_version(
    world: World, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    live = promote_first_version(world)
    more_events(world)
    consumer = world.consumer()

    with monkeypatch.context() as patch:
        INJECTIONS[where](patch)
        with pytest.raises(OSError) as raised:
            consumer.catch_up()

    assert raised.value.errno == errno.ENOSPC
    assert world.shared.live_manifest(COLLECTION) == live
    assert_version_complete(world.shared, COLLECTION)
    assert not no_leftovers(world.shared, COLLECTION)  # publish cleans up
    world.shared.gc(COLLECTION, keep=1, grace_seconds=0)
    assert not list(world.shared.root.glob(f".{COLLECTION}.link-*"))
    consumer.catch_up()
    assert_recovered(world)


def test_gc_removes_a_crashed_publish_only_after_the_grace_period(
    world: World,
) -> None:
    promote_first_version(world)
    leftover = world.shared.root / ".versions" / COLLECTION / ".tmp-"
    leftover = leftover.with_name(f".tmp-{new_version_id(utc_past(seconds=60))}")
    (leftover / "sub").mkdir(parents=True)
    (leftover / "sub" / "chroma.sqlite3").write_bytes(b"half")
    (leftover / "sub").chmod(0o555)  # sealed trees are read-only

    assert world.shared.gc(COLLECTION, keep=1, grace_seconds=300) == []
    assert leftover.exists()  # it may be a publish still running
    assert world.shared.gc(COLLECTION, keep=1, grace_seconds=30) == [leftover.name]
    assert not leftover.exists()


def utc_past(seconds: float) -> Any:
    from datetime import timedelta

    from journal.base import utc_now

    return utc_now() - timedelta(seconds=seconds)


# -- S3 and DynamoDB: throttling below botocore, outages above it --------------


class AwsFaults:
    """Answers the first ``count`` calls of an operation with an AWS error
    response, before moto sees them; botocore then retries as configured."""

    def __init__(self, client: Any, event: str, status: int, body: bytes) -> None:
        from moto.core.botocore_stubber import MockRawResponse

        self.injected = 0
        self.remaining = 0
        self._status, self._body = status, body
        self._raw = MockRawResponse

        def answer(request: Any, **_kwargs: Any) -> Any:
            from botocore.awsrequest import AWSResponse

            if self.remaining <= 0:
                return None
            self.remaining -= 1
            self.injected += 1
            headers: Any = {}
            return AWSResponse(
                request.url, self._status, headers, self._raw(self._body)
            )

        client.meta.events.register_first(event, answer)


S3_SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
DYNAMODB_THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "message": "Rate of requests exceeds the allowed throughput.",
    }
).encode()


class FlakyObjects(ObjectStore):
    """An object store whose downloads fail while ``down`` is set, as an
    S3 store does once botocore has given up."""

    def __init__(self, inner: ObjectStore) -> None:
        self._inner = self.inner = inner
        self.url = inner.url
        self.down = False
        self.failures = 0

    def get_file(self, key: str, dest: Path) -> None:
        if self.down:
            self.failures += 1
            raise ObjectStoreError(f"{key!r}: SlowDown (injected, retries exhausted)")
        self._inner.get_file(key, dest)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._inner.put_bytes(key, data)

    def put_file(self, key: str, path: Path) -> None:
        self._inner.put_file(key, path)

    def get_bytes(self, key: str) -> bytes:
        return self._inner.get_bytes(key)

    def exists(self, key: str) -> bool:
        return self._inner.exists(key)

    def list(self, prefix: str) -> list[ObjectInfo]:
        return self._inner.list(prefix)

    def delete(self, key: str) -> None:
        self._inner.delete(key)

    def read_versioned(self, key: str) -> Versioned | None:
        return self._inner.read_versioned(key)

    def put_if(self, key: str, data: bytes, *, etag: str | None) -> CasOutcome:
        return self._inner.put_if(key, data, etag=etag)


@pytest.fixture
def s3_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    from tests.aws.moto_s3 import s3_store

    objects = FlakyObjects(s3_store(request, prefix=f"t-{uuid.uuid4().hex[:6]}"))
    built = local_world(tmp_path / "world", objects=objects)
    yield built
    built.close()


@pytest.mark.slow
def test_s3_throttling_is_retried_by_botocore_and_an_outage_parks_the_event(
    s3_world: World,
) -> None:
    world = s3_world
    objects = world.objects
    assert isinstance(objects, FlakyObjects)
    s3 = objects.inner._client  # type: ignore[attr-defined]
    throttle = AwsFaults(s3, "before-send.s3.GetObject", 503, S3_SLOW_DOWN)
    throttle.remaining = 2
    world.delta(COLLECTION, word_records(1))
    consumer = world.consumer()

    consumer.catch_up()  # two SlowDown answers, retried by botocore

    assert throttle.injected == 2 and world.applied(COLLECTION) == 1
    live = assert_version_complete(world.shared, COLLECTION)

    objects.down = True
    world.delta(COLLECTION, word_records(2))
    world.delta("other", word_records(3))
    consumer.catch_up()
    assert objects.failures == 2 * world.config.apply_attempts  # both collections
    assert consumer.blocked()[COLLECTION].seq == 2
    assert "SlowDown" in consumer.blocked()[COLLECTION].error
    assert world.shared.live_manifest(COLLECTION) == live
    assert world.applied("other") == 0  # its delta is on S3 too

    objects.down = False
    for name in (COLLECTION, "other"):
        status = world.status.get(name)
        assert status is not None
        world.status.put(dataclasses.replace(status, blocked_seq=None))
    consumer.catch_up()
    assert world.applied("other") == world.journal.head("other")
    assert_recovered(world)


@pytest.fixture
def dynamodb_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    from journal.dynamodb import DynamoDBJournal
    from tests.aws.moto_backends import JOURNAL_TABLE, moto_aws

    aws = moto_aws(request)
    journal = DynamoDBJournal(aws.dynamodb, JOURNAL_TABLE)
    built = local_world(tmp_path / "world", journal=journal)
    yield built
    built.close()


class DynamoDBOutage:
    """Every call fails while ``down`` is set, as botocore reports it once
    its retries are spent."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.down = False
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if not callable(real) or name.startswith(("get_", "can_", "meta")):
            return real

        def call(**kwargs: Any) -> Any:
            if self.down:
                from tests.aws.support import client_error

                self.failures += 1
                raise client_error("ThrottlingException", name)
            return real(**kwargs)

        return call


@pytest.mark.slow
def test_dynamodb_throttling_is_retried_and_an_outage_stops_without_damage(
    dynamodb_world: World,
) -> None:
    from journal.dynamodb import DynamoDBJournal
    from tests.aws.moto_backends import JOURNAL_TABLE

    world = dynamodb_world
    journal = world.journal
    assert isinstance(journal, DynamoDBJournal)
    client = journal._client
    throttle = AwsFaults(client, "before-send.dynamodb.Query", 400, DYNAMODB_THROTTLED)
    world.delta(COLLECTION, word_records(1))
    world.delta(COLLECTION, word_records(2))
    throttle.remaining = 3
    consumer = world.consumer()

    consumer.catch_up()
    consumer.close()

    assert throttle.injected == 3
    assert world.applied(COLLECTION) == 2
    live = assert_version_complete(world.shared, COLLECTION)

    outage = DynamoDBOutage(client)
    reader = DynamoDBJournal(outage, JOURNAL_TABLE)  # type: ignore[arg-type]
    more_events(world)
    outage.down = True
    down = world.consumer("during-outage", journal=reader)
    with pytest.raises(JournalUnavailable):
        down.catch_up([COLLECTION])
    down.run(threading.Event(), until_caught_up=True)  # logs, promotes nothing
    down.close()
    assert outage.failures >= 2
    assert world.shared.live_manifest(COLLECTION) == live

    outage.down = False
    world.consumer("after-outage").catch_up()
    assert_recovered(world)


Status = CollectionStatus
