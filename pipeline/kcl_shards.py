"""Which collections a Kinesis shard carries.

The journal publishes each event with its collection as the partition key.
Kinesis maps a partition key to a 128-bit integer with MD5 and sends the
record to the open shard whose hash key range holds that integer (AWS
Kinesis Data Streams developer guide, "Partition key"). A record processor
that knows its shard's range therefore knows which collections are its own,
including those whose records it never received because their publish
failed: that is what its idle catch-up compares with the journal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient

log = structlog.get_logger(__name__)


def hash_key(partition_key: str) -> int:
    """The 128-bit hash key Kinesis derives from ``partition_key``."""
    digest = hashlib.md5(partition_key.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest, "big")


class KinesisShardOwnership:
    """Looks up a shard's hash key range and tests collections against it."""

    def __init__(self, client: KinesisClient, stream_name: str) -> None:
        self._client = client
        self._stream_name = stream_name

    def __call__(self, shard_id: str) -> Callable[[str], bool]:
        """A predicate: does ``shard_id`` carry this collection's records?

        When the range cannot be read it owns nothing, and the processor
        catches up only the collections it has seen.
        """
        bounds = self._hash_range(shard_id)
        if bounds is None:
            return lambda _collection: False
        low, high = bounds
        return lambda collection: low <= hash_key(collection) <= high

    def _hash_range(self, shard_id: str) -> tuple[int, int] | None:
        try:
            for shard in self._shards():
                if shard["ShardId"] == shard_id:
                    bounds = shard["HashKeyRange"]
                    return int(bounds["StartingHashKey"]), int(bounds["EndingHashKey"])
        except (BotoCoreError, ClientError) as error:
            log.warning("kcl_shard_range_unknown", shard_id=shard_id, error=str(error))
            return None
        log.warning("kcl_shard_not_listed", shard_id=shard_id)
        return None

    def _shards(self) -> list[Any]:
        shards: list[Any] = []
        response = self._client.list_shards(StreamName=self._stream_name)
        shards.extend(response["Shards"])
        while token := response.get("NextToken"):
            response = self._client.list_shards(NextToken=token)
            shards.extend(response["Shards"])
        return shards
