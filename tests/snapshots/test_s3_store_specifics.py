"""What the object store contract does not cover for S3: the prefix,
multipart uploads and error translation (moto)."""

from __future__ import annotations

from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig

from journal.errors import ObjectNotFound, ObjectStoreError
from journal.s3_store import S3ObjectStore
from tests.aws.moto_s3 import BUCKET, s3_client, s3_store

MIB = 1024 * 1024


def test_prefix_keeps_keys_below_it_and_names_the_url(
    request: pytest.FixtureRequest,
) -> None:
    store = s3_store(request, prefix="/tenant-a/")
    other = s3_store(request)
    store.put_bytes("lines/snapshots/latest.json", b"{}")
    other.put_bytes("lines/deltas/x", b"d")

    raw = s3_client(request).list_objects_v2(Bucket=BUCKET)
    keys = sorted(item["Key"] for item in raw["Contents"])

    assert store.url == f"s3://{BUCKET}/tenant-a"
    assert other.url == f"s3://{BUCKET}"
    assert keys == ["lines/deltas/x", "tenant-a/lines/snapshots/latest.json"]
    assert [info.key for info in store.list("")] == ["lines/snapshots/latest.json"]
    assert store.get_bytes("lines/snapshots/latest.json") == b"{}"


def test_large_files_are_uploaded_in_parts(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    transfer = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    store = s3_store(request, transfer=transfer)
    source = tmp_path / "data_level0.bin"
    data = bytes(range(256)) * (11 * MIB // 256)
    source.write_bytes(data)

    store.put_file("words/snapshots/v1/data_level0.bin", source)
    store.get_file("words/snapshots/v1/data_level0.bin", tmp_path / "back.bin")

    head = s3_client(request).head_object(
        Bucket=BUCKET, Key="words/snapshots/v1/data_level0.bin"
    )
    assert head["ETag"].strip('"').endswith("-3")  # three parts
    assert (tmp_path / "back.bin").read_bytes() == data


def test_missing_bucket_is_a_store_error_not_a_missing_object(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = S3ObjectStore(s3_client(request), "no-such-bucket-here")
    (tmp_path / "f").write_bytes(b"x")

    with pytest.raises(ObjectStoreError) as read_error:
        store.get_bytes("lines/a")
    with pytest.raises(ObjectStoreError, match="no-such-bucket-here"):
        store.put_file("lines/a", tmp_path / "f")

    assert not isinstance(read_error.value, ObjectNotFound)
    assert "NoSuchBucket" in str(read_error.value)


def test_listing_follows_pages(request: pytest.FixtureRequest) -> None:
    store = s3_store(request, list_page_size=7)
    keys = [f"words/snapshots/v1/file-{index:04d}" for index in range(30)]
    for key in keys:
        store.put_bytes(key, b"")

    assert [info.key for info in store.list("words/")] == keys
