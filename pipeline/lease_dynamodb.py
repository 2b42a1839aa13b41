"""The collection lease in a DynamoDB table (the production backend).

Two items per collection, keyed by ``collection`` (S)::

    collection      attributes
    ──────────────  ─────────────────────────────────────────────────────────
    lines           owner, token, expires_at_us, expires_at (ISO),
                    expires_at_epoch (TTL)            ← the lease in force
    lines#fence     token                             ← the highest token given

Ownership is decided only by ``expires_at_us`` against the injected clock,
inside condition expressions; ``expires_at_epoch`` lets the table's TTL
delete leases abandoned by crashed holders, days late at worst ("Working with
time to live", DynamoDB developer guide). Because TTL can delete the lease
item, the token lives in a fence item without a TTL attribute: acquiring
writes ``fence + 1`` into both items in one transaction, conditioned on the
fence still holding what was read, so tokens only ever grow::

    A  read fence=7 ─ txn(fence 7→8, lease free?) ✓ token 8
    B  read fence=7 ──────── txn(fence 7→8 ✗) ─ read fence=8 ─ txn(lease free? ✗) → None

As with the local lease, an owner that acquires a lease it already holds
gets a new grant with a larger token, fencing out its own predecessor.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from journal.aws_schema import (
    LEASE_PARTITION_KEY,
    LEASE_PARTITION_KEY_TYPE,
    LEASE_TTL_ATTRIBUTE,
)
from journal.base import Clock, utc_now
from pipeline.errors import PipelineError
from pipeline.lease import Lease, LeaseGrant

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FENCE_SUFFIX = "#fence"
#: Acquisitions that lose the fence to a concurrent acquirer try again this
#: often; the winner usually holds the lease by then and the next try is
#: refused by the lease condition.
_FENCE_ATTEMPTS = 3


class LeaseStoreUnavailable(PipelineError):
    """The lease table could not be read or written."""


class DynamoDBLease(Lease):
    """Per-collection leases with fencing tokens in one DynamoDB table."""

    def __init__(
        self, client: DynamoDBClient, table_name: str, *, clock: Clock = utc_now
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def acquire(self, collection: str, owner: str, ttl: timedelta) -> LeaseGrant | None:
        """Take the lease when it is free, expired or already ``owner``'s."""
        for _ in range(_FENCE_ATTEMPTS):
            now = self._clock()
            fence = self._fence(collection)
            grant = LeaseGrant(collection, owner, fence + 1, _exact(now + ttl))
            outcome = self._take(grant, fence, now)
            if outcome != "fence_moved":
                return grant if outcome == "taken" else None
        return None

    def renew(self, grant: LeaseGrant, ttl: timedelta) -> LeaseGrant | None:
        """Extend ``grant`` while it is still in force; None otherwise."""
        now = self._clock()
        renewed = LeaseGrant(
            grant.collection, grant.owner, grant.token, _exact(now + ttl)
        )
        expiry = _expiry_attributes(renewed.expires_at)
        try:
            with self._translated("renew", grant.collection):
                self._client.update_item(
                    TableName=self._table,
                    Key={LEASE_PARTITION_KEY: {"S": grant.collection}},
                    UpdateExpression="SET #x = :x, #iso = :iso, #ttl = :ttl",
                    ConditionExpression="#o = :o AND #t = :t AND #x > :now",
                    ExpressionAttributeNames={
                        "#o": "owner",
                        "#t": "token",
                        "#x": "expires_at_us",
                        "#iso": "expires_at",
                        "#ttl": LEASE_TTL_ATTRIBUTE,
                    },
                    ExpressionAttributeValues={
                        ":o": {"S": grant.owner},
                        ":t": {"N": str(grant.token)},
                        ":now": {"N": str(_micros(now))},
                        ":x": expiry["expires_at_us"],
                        ":iso": expiry["expires_at"],
                        ":ttl": expiry[LEASE_TTL_ATTRIBUTE],
                    },
                )
        except _ConditionFailed:
            return None
        return renewed

    def release(self, grant: LeaseGrant) -> bool:
        """Give the lease up; only the holder of ``grant`` can (even expired,
        as long as no one took it since). The fence keeps the token."""
        try:
            with self._translated("release", grant.collection):
                self._client.delete_item(
                    TableName=self._table,
                    Key={LEASE_PARTITION_KEY: {"S": grant.collection}},
                    ConditionExpression="#o = :o AND #t = :t",
                    ExpressionAttributeNames={"#o": "owner", "#t": "token"},
                    ExpressionAttributeValues={
                        ":o": {"S": grant.owner},
                        ":t": {"N": str(grant.token)},
                    },
                )
        except _ConditionFailed:
            return False
        return True

    def current(self, collection: str) -> LeaseGrant | None:
        """The grant in force (strongly consistent read), or None."""
        with self._translated("read", collection):
            item = self._client.get_item(
                TableName=self._table,
                Key={LEASE_PARTITION_KEY: {"S": collection}},
                ConsistentRead=True,
            ).get("Item")
        if item is None:
            return None
        expires_us = int(item["expires_at_us"]["N"])
        if expires_us <= _micros(self._clock()):
            return None
        return LeaseGrant(
            collection,
            item["owner"]["S"],
            int(item["token"]["N"]),
            _EPOCH + timedelta(microseconds=expires_us),
        )

    # -- steps ----------------------------------------------------------------

    def _fence(self, collection: str) -> int:
        """The highest token given for ``collection`` so far (0 if none)."""
        with self._translated("read", collection):
            item = self._client.get_item(
                TableName=self._table,
                Key={LEASE_PARTITION_KEY: {"S": collection + _FENCE_SUFFIX}},
                ConsistentRead=True,
            ).get("Item")
        return int(item["token"]["N"]) if item else 0

    def _take(self, grant: LeaseGrant, fence: int, now: datetime) -> str:
        """Write the new fence and lease together: ``taken``, ``held`` (by
        someone else) or ``fence_moved`` (another acquirer was faster)."""
        try:
            with self._translated("acquire", grant.collection):
                self._client.transact_write_items(
                    TransactItems=_take_actions(self._table, grant, fence, now)
                )
        except _Cancelled as cancelled:
            fence_code, lease_code = [*cancelled.codes, "None", "None"][:2]
            if lease_code == "ConditionalCheckFailed":
                return "held"
            if {fence_code, lease_code} & {
                "ConditionalCheckFailed",
                "TransactionConflict",
            }:
                return "fence_moved"
            raise LeaseStoreUnavailable(
                f"acquiring the lease of {grant.collection!r} was cancelled: "
                f"{cancelled.codes}"
            ) from cancelled
        return "taken"

    @contextmanager
    def _translated(self, operation: str, collection: str) -> Iterator[None]:
        """The one place where boto3 errors become lease errors."""
        try:
            yield
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed from error
            if code == "TransactionCanceledException":
                response: dict[str, Any] = dict(error.response)
                reasons = response.get("CancellationReasons", [])
                raise _Cancelled([str(r.get("Code")) for r in reasons]) from error
            raise LeaseStoreUnavailable(
                f"lease {operation} of {collection!r} on {self._table!r}: {error}"
            ) from error
        except BotoCoreError as error:
            raise LeaseStoreUnavailable(
                f"lease {operation} of {collection!r} on {self._table!r}: {error}"
            ) from error


class _ConditionFailed(Exception):
    """A conditional write found the lease in another state (an outcome)."""


class _Cancelled(Exception):
    """A transaction was cancelled; ``codes`` has one reason per action."""

    def __init__(self, codes: list[str]) -> None:
        super().__init__(codes)
        self.codes = codes


def _take_actions(
    table: str, grant: LeaseGrant, fence: int, now: datetime
) -> list[TransactWriteItemTypeDef]:
    lease_item: dict[str, Any] = {
        LEASE_PARTITION_KEY: {"S": grant.collection},
        "owner": {"S": grant.owner},
        "token": {"N": str(grant.token)},
        **_expiry_attributes(grant.expires_at),
    }
    return [
        {
            "Put": {
                "TableName": table,
                "Item": {
                    LEASE_PARTITION_KEY: {"S": grant.collection + _FENCE_SUFFIX},
                    "token": {"N": str(grant.token)},
                },
                "ConditionExpression": "attribute_not_exists(#c) OR #t = :fence",
                "ExpressionAttributeNames": {"#c": LEASE_PARTITION_KEY, "#t": "token"},
                "ExpressionAttributeValues": {":fence": {"N": str(fence)}},
            }
        },
        {
            "Put": {
                "TableName": table,
                "Item": lease_item,
                "ConditionExpression": (
                    "attribute_not_exists(#c) OR #x <= :now OR #o = :o"
                ),
                "ExpressionAttributeNames": {
                    "#c": LEASE_PARTITION_KEY,
                    "#x": "expires_at_us",
                    "#o": "owner",
                },
                "ExpressionAttributeValues": {
                    ":now": {"N": str(_micros(now))},
                    ":o": {"S": grant.owner},
                },
            }
        },
    ]


def _expiry_attributes(expires_at: datetime) -> dict[str, Any]:
    """Exact expiry for conditions, ISO for people, whole seconds for TTL
    (TTL takes a Number of epoch seconds)."""
    micros = _micros(expires_at)
    return {
        "expires_at_us": {"N": str(micros)},
        "expires_at": {"S": expires_at.isoformat()},
        LEASE_TTL_ATTRIBUTE: {"N": str(math.ceil(micros / 1_000_000))},
    }


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (a naive time is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _exact(moment: datetime) -> datetime:
    """``moment`` as the UTC datetime that :meth:`DynamoDBLease.current`
    reads back, so that grants compare equal."""
    return _EPOCH + timedelta(microseconds=_micros(moment))


def create_lease_table(client: DynamoDBClient, name: str) -> None:
    """Create the lease table with TTL on ``expires_at_epoch``, for tests and
    development (production tables come from Terraform)."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": LEASE_PARTITION_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[
            {
                "AttributeName": LEASE_PARTITION_KEY,
                "AttributeType": LEASE_PARTITION_KEY_TYPE,
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=name)
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": LEASE_TTL_ATTRIBUTE},
    )
