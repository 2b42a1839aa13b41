"""moto-backed S3 for tests: a bucket per test and the object store factory.

moto checks an S3 precondition and stores the object in two Python steps,
so two threads can both pass the check; S3 decides each request atomically.
As for DynamoDB (see :mod:`tests.aws.moto_backends`), every client of one
test runs one request at a time through a shared lock, which restores that
atomicity while still letting the read-then-write races happen.

The clients send no flexible checksums (``request_checksum_calculation``
"when_required"). moto 5.2.5 finds an upload's trailing checksum with a
regular expression over the whole request body, so a payload that itself
contains ``x-amz-checksum-crc32:...`` gets that value stored, and the
download then fails botocore's checksum validation. ChromaDB index files do
contain such text: ``data_level0.bin`` holds uninitialised heap memory,
which in a test process can include an earlier upload's request body.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from journal.aws_clients import client_config
from journal.s3_store import S3ObjectStore
from tests.aws.moto_backends import REGION, SerializedClient, moto_aws

BUCKET = "chroma-journal-test-objects"
_LOCK = pytest.StashKey[threading.Lock]()


def s3_client(request: pytest.FixtureRequest, bucket: str = BUCKET) -> Any:
    """A client on the test's moto world, with ``bucket`` created."""
    moto_aws(request)  # starts moto for this test (once)
    node = request.node
    first = _LOCK not in node.stash
    if first:
        node.stash[_LOCK] = threading.Lock()
    config = client_config().merge(Config(request_checksum_calculation="when_required"))
    raw = boto3.session.Session().client("s3", region_name=REGION, config=config)
    client = SerializedClient(raw, node.stash[_LOCK])
    existing = {b["Name"] for b in raw.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        raw.create_bucket(Bucket=bucket)
    return client


def s3_store(
    request: pytest.FixtureRequest,
    *,
    bucket: str = BUCKET,
    prefix: str = "",
    transfer: TransferConfig | None = None,
    list_page_size: int = 1000,
) -> S3ObjectStore:
    """An S3 object store on the test's moto bucket."""
    return S3ObjectStore(
        s3_client(request, bucket),
        bucket,
        prefix=prefix,
        transfer=transfer,
        list_page_size=list_page_size,
    )


def s3_object_store(setup: Any) -> S3ObjectStore:
    """The object store contract factory (``setup`` is
    ``tests/journal/conftest.py``'s ``BackendSetup``)."""
    return s3_store(setup.request)
