"""How the DynamoDB journal lays its items out in the one journal table.

The table's key is (``collection`` S, ``seq`` N), shared with the Terraform
through :mod:`journal.aws_schema`. Three kinds of item live in it::

    collection (partition)     seq (sort)      holds
    ─────────────────────────  ──────────────  ───────────────────────────────
    lines                      1, 2, 3, ...    one event: envelope JSON
    lines#key#<idempotency>    0               the seq the key was stored at
    ~collections               hash(name)      one registry item per collection

Collection names allow only letters, digits, ``-`` and ``_``, so ``#`` and
``~`` keep key items and the registry out of every collection's partition:
``head()`` and ``read()`` of a collection never see them. The registry item
is written in the same transaction as a collection's first event, so
``collections()`` is one Query instead of a Scan of every event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from journal.aws_schema import (
    JOURNAL_PARTITION_KEY,
    JOURNAL_PARTITION_KEY_TYPE,
    JOURNAL_SORT_KEY,
    JOURNAL_SORT_KEY_TYPE,
)
from journal.events import Envelope

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

Item = dict[str, "AttributeValueTypeDef"]

#: DynamoDB's item size limit is "400 KB" (Service quotas, "Item size");
#: the decimal reading is the safe one, and moto refuses items a little
#: above it (405,000 bytes by its own count).
ITEM_LIMIT_BYTES = 400_000
#: TransactWriteItems takes at most 100 actions and 4 MB in total
#: (DynamoDB API reference, TransactWriteItems).
TRANSACTION_MAX_ACTIONS = 100
TRANSACTION_LIMIT_BYTES = 4_000_000

REGISTRY_PARTITION = "~collections"
KEY_ITEM_SEQ = 0
ENVELOPE = "envelope"
EVENT_ID = "event_id"
EVENT_TYPE = "type"
RECORDED_AT = "recorded_at"
IDEMPOTENCY_KEY = "idempotency_key"
NAME = "name"
PROVISIONAL = "provisional"


def key_partition(collection: str, key: str) -> str:
    """Partition value of the item that records idempotency ``key``."""
    return f"{collection}#key#{key}"


def registry_seq(collection: str) -> int:
    """A stable sort key for ``collection`` in the registry partition.

    120 bits of sha256 fit DynamoDB's 38-digit numbers; a collision between
    two of a deployment's few collection names is not a practical concern.
    """
    return int.from_bytes(hashlib.sha256(collection.encode()).digest()[:15], "big")


def time_key(moment: datetime) -> str:
    """``moment`` as a fixed-width UTC string that sorts like the time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def key_of(partition: str, seq: int) -> Item:
    """The primary key of an item."""
    return {JOURNAL_PARTITION_KEY: {"S": partition}, JOURNAL_SORT_KEY: {"N": str(seq)}}


def event_item(envelope: Envelope) -> Item:
    """The item that stores ``envelope``."""
    item = key_of(envelope.collection, envelope.seq)
    item[ENVELOPE] = {"S": envelope.to_json()}
    item[EVENT_ID] = {"S": envelope.event_id}
    item[EVENT_TYPE] = {"S": envelope.type}
    item[RECORDED_AT] = {"S": time_key(envelope.recorded_at)}
    if envelope.idempotency_key is not None:
        item[IDEMPOTENCY_KEY] = {"S": envelope.idempotency_key}
    return item


def key_item(envelope: Envelope) -> Item:
    """The item that records ``envelope``'s idempotency key and seq."""
    if envelope.idempotency_key is None:
        raise ValueError("envelope has no idempotency key")
    partition = key_partition(envelope.collection, envelope.idempotency_key)
    item = key_of(partition, KEY_ITEM_SEQ)
    item["event_seq"] = {"N": str(envelope.seq)}
    item[EVENT_ID] = {"S": envelope.event_id}
    return item


def registry_item(collection: str, *, provisional: bool = False) -> Item:
    """The registry item that lists ``collection`` in ``collections()``.

    A provisional item was written ahead of the collection's first event
    (see ``DynamoDBJournal``), so it alone does not prove an event exists.
    """
    item = key_of(REGISTRY_PARTITION, registry_seq(collection))
    item[NAME] = {"S": collection}
    if provisional:
        item[PROVISIONAL] = {"N": "1"}
    return item


def stored_seq(item: Item) -> int:
    """The event seq a key item points at."""
    return int(item["event_seq"]["N"])


def envelope_of(item: Item) -> Envelope:
    """The envelope stored in an event item."""
    return Envelope.from_json(item[ENVELOPE]["S"])


def item_size(item: Mapping[str, Any]) -> int:
    """An upper bound of ``item``'s size as DynamoDB counts it.

    Per "Item sizes and formats" in the DynamoDB developer guide: attribute
    names and string values count their UTF-8 bytes; a number counts about
    one byte per two significant digits plus one, bounded here by its length.
    """
    total = 0
    for name, value in item.items():
        total += len(name.encode())
        if "S" in value:
            total += len(str(value["S"]).encode())
        elif "N" in value:
            total += len(str(value["N"])) + 1
        else:
            raise ValueError(f"unexpected attribute type in {name!r}")
    return total


def create_journal_table(client: DynamoDBClient, name: str) -> None:
    """Create the journal table (on-demand) and wait until it is active.

    For tests and development; production tables come from Terraform.
    """
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": JOURNAL_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": JOURNAL_SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {
                "AttributeName": JOURNAL_PARTITION_KEY,
                "AttributeType": JOURNAL_PARTITION_KEY_TYPE,
            },
            {"AttributeName": JOURNAL_SORT_KEY, "AttributeType": JOURNAL_SORT_KEY_TYPE},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=name)
