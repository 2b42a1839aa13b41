"""A shard knows which collections' partition keys it carries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from journal.aws_clients import make_client
from pipeline.kcl_shards import KinesisShardOwnership

STREAM = "events"


@pytest.fixture
def kinesis(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = make_client("kinesis", region="us-east-1")
        client.create_stream(StreamName=STREAM, ShardCount=4)
        yield client


def shard_holding(client: Any, partition_key: str) -> str:
    response = client.put_record(
        StreamName=STREAM, Data=b"x", PartitionKey=partition_key
    )
    return str(response["ShardId"])


@pytest.mark.parametrize("collection", ["lines", "words", "receipts-2026", "a_b"])
def test_collection_is_owned_by_the_shard_its_records_go_to(
    kinesis: Any, collection: str
) -> None:
    ownership = KinesisShardOwnership(kinesis, STREAM)
    shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=STREAM)["Shards"]]

    owners = [shard for shard in shards if ownership(shard)(collection)]

    assert owners == [shard_holding(kinesis, collection)]


def test_unknown_shard_owns_nothing(kinesis: Any) -> None:
    ownership = KinesisShardOwnership(kinesis, STREAM)

    assert not ownership("shardId-000000000099")("lines")


def test_unreadable_stream_owns_nothing(kinesis: Any) -> None:
    ownership = KinesisShardOwnership(kinesis, "no-such-stream")

    assert not ownership("shardId-000000000000")("lines")
