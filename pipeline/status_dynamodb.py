"""The status mirror in a DynamoDB table (the production backend).

One item per collection, keyed by ``collection`` (S). Absent optional
fields are absent attributes. The table is small (one item per collection),
so listing every status is a Scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from journal.aws_schema import STATUS_PARTITION_KEY, STATUS_PARTITION_KEY_TYPE
from pipeline.errors import PipelineError
from pipeline.status import CollectionStatus, StatusStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class StatusStoreUnavailable(PipelineError):
    """The status table could not be read or written."""


class DynamoDBStatusStore(StatusStore):
    """Per-collection status items in one DynamoDB table."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put(self, status: CollectionStatus) -> None:
        """Replace the collection's item."""
        with self._translated("put"):
            self._client.put_item(TableName=self._table, Item=_item_of(status))

    def get(self, collection: str) -> CollectionStatus | None:
        """The collection's status (strongly consistent), or None."""
        with self._translated("get"):
            item = self._client.get_item(
                TableName=self._table,
                Key={STATUS_PARTITION_KEY: {"S": collection}},
                ConsistentRead=True,
            ).get("Item")
        return None if item is None else _status_of(item)

    def all(self) -> list[CollectionStatus]:
        """Every status, sorted by collection."""
        statuses: list[CollectionStatus] = []
        scan: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            with self._translated("all"):
                page = self._client.scan(**scan)
            statuses.extend(_status_of(item) for item in page["Items"])
            if not page.get("LastEvaluatedKey"):
                break
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(statuses, key=lambda status: status.collection)

    @contextmanager
    def _translated(self, operation: str) -> Iterator[None]:
        """The one place where boto3 errors become status errors."""
        try:
            yield
        except (ClientError, BotoCoreError) as error:
            raise StatusStoreUnavailable(
                f"status {operation} on {self._table!r}: {error}"
            ) from error


def _item_of(status: CollectionStatus) -> dict[str, Any]:
    item: dict[str, Any] = {
        STATUS_PARTITION_KEY: {"S": status.collection},
        "applied_seq": {"N": str(status.applied_seq)},
        "last_batch_events": {"N": str(status.last_batch_events)},
        "last_batch_seconds": {"N": _number(status.last_batch_seconds)},
    }
    optional: dict[str, Any] = {
        "live_version": _string(status.live_version),
        "promoted_at": _string(
            status.promoted_at.isoformat() if status.promoted_at else None
        ),
        "blocked_seq": (
            None if status.blocked_seq is None else {"N": str(status.blocked_seq)}
        ),
        "blocked_error": _string(status.blocked_error),
    }
    item.update({name: value for name, value in optional.items() if value})
    return item


def _number(value: float) -> str:
    """A float as a DynamoDB number without exponent that reads back equal
    (the shortest repr, written out in full)."""
    return format(Decimal(repr(float(value))), "f")


def _string(value: str | None) -> dict[str, str] | None:
    # DynamoDB refuses empty strings only in key attributes; an empty string
    # is stored as it is, None as an absent attribute.
    return None if value is None else {"S": value}


def _status_of(item: dict[str, Any]) -> CollectionStatus:
    def text(name: str) -> str | None:
        return str(item[name]["S"]) if name in item else None

    promoted = text("promoted_at")
    return CollectionStatus(
        collection=str(item[STATUS_PARTITION_KEY]["S"]),
        applied_seq=int(item["applied_seq"]["N"]),
        live_version=text("live_version"),
        promoted_at=None if promoted is None else datetime.fromisoformat(promoted),
        last_batch_events=int(item["last_batch_events"]["N"]),
        last_batch_seconds=float(item["last_batch_seconds"]["N"]),
        blocked_seq=int(item["blocked_seq"]["N"]) if "blocked_seq" in item else None,
        blocked_error=text("blocked_error"),
    )


def create_status_table(client: DynamoDBClient, name: str) -> None:
    """Create the status table, for tests and development (production
    tables come from Terraform)."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": STATUS_PARTITION_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[
            {
                "AttributeName": STATUS_PARTITION_KEY,
                "AttributeType": STATUS_PARTITION_KEY_TYPE,
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=name)
