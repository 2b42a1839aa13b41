"""Bookkeeping of one batch append on DynamoDB: duplicates and outcomes.

A batch may repeat an idempotency key, and some of its keys may have been
stored by earlier appends. :class:`BatchPlan` tracks which events still have
to be written; the ``check_*`` functions refuse what DynamoDB could not
store, before any write; a cancelled transaction is turned into a typed
outcome (:class:`KeysExist` or :class:`LostRace`) by :func:`cancellation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from journal import _dynamodb_layout as layout
from journal.aws_schema import JOURNAL_SORT_KEY
from journal.base import AppendResult
from journal.errors import EventTooLarge, JournalError, JournalUnavailable
from journal.events import Envelope, NewEvent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import PutTypeDef

#: Cancellation reasons worth another attempt with a fresh head:
#: another writer took the seq, another transaction held an item, or the
#: partition was throttled (botocore does not retry a cancelled transaction).
_RETRYABLE = frozenset(
    {"ConditionalCheckFailed", "TransactionConflict", "ThrottlingError"}
)
#: A key item came back without its old image; the caller reads it instead.
UNKNOWN_SEQ = -1


class LostRace(JournalError):
    """Another writer stored the seq this append wanted (retried)."""

    def __init__(self, collection: str, seq: int) -> None:
        super().__init__(f"{collection}: seq {seq} was taken by another writer")
        self.collection = collection
        self.seq = seq


class KeysExist(JournalError):
    """Idempotency keys of the batch were stored before, at these seqs."""

    def __init__(self, collection: str, seqs: dict[str, int]) -> None:
        super().__init__(f"{collection}: keys stored before: {sorted(seqs)}")
        self.collection = collection
        self.seqs = seqs


class BatchTooLarge(JournalError):
    """A batch does not fit in one DynamoDB transaction, so it cannot be
    appended atomically; split it into smaller batches."""

    def __init__(self, collection: str, what: str, size: int, limit: int) -> None:
        super().__init__(
            f"batch for collection {collection!r} needs {size} {what}, over "
            f"the transaction limit of {limit}"
        )
        self.collection = collection
        self.size = size
        self.limit = limit


class AppendContended(JournalError):
    """Every attempt of an append lost the race for the next seq."""

    def __init__(self, collection: str, attempts: int) -> None:
        super().__init__(
            f"append to {collection!r} lost the race for the next seq "
            f"{attempts} times; too many concurrent writers"
        )
        self.collection = collection
        self.attempts = attempts


class BatchPlan:
    """Which events of a batch still need writing, and what each returns."""

    def __init__(self, events: Sequence[NewEvent]) -> None:
        self._events = list(events)
        self._first_by_key: dict[str, int] = {}
        self._first_of: dict[int, int] = {}
        for index, event in enumerate(self._events):
            key = event.idempotency_key
            if key is None:
                continue
            first = self._first_by_key.setdefault(key, index)
            if first != index:
                self._first_of[index] = first
        self._stored: dict[int, Envelope] = {}
        self._pending: list[int] = []

    def max_actions(self) -> int:
        """Transaction actions needed if every event is new: one per event
        and one per key item."""
        unique = len(self._events) - len(self._first_of)
        return unique + len(self._first_by_key)

    def pending(self) -> list[NewEvent]:
        """Events still to write, in batch order."""
        self._pending = [
            index
            for index in range(len(self._events))
            if index not in self._first_of and index not in self._stored
        ]
        return [self._events[index] for index in self._pending]

    def resolve(self, stored: dict[str, Envelope]) -> None:
        """Record the envelopes stored earlier under some of the keys."""
        for key, envelope in stored.items():
            self._stored[self._first_by_key[key]] = envelope

    def results(self, written: Sequence[Envelope]) -> list[AppendResult]:
        """One result per event, given the envelopes written for
        :meth:`pending`."""
        outcome = {
            **{
                i: AppendResult(envelope, duplicate=True)
                for i, envelope in self._stored.items()
            },
            **{
                i: AppendResult(envelope, duplicate=False)
                for i, envelope in zip(self._pending, written, strict=True)
            },
        }
        for index, first in self._first_of.items():
            outcome[index] = AppendResult(outcome[first].envelope, duplicate=True)
        return [outcome[index] for index in range(len(self._events))]


def check_action_count(collection: str, plan: BatchPlan) -> None:
    """Refuse, before any write, a batch that cannot fit one transaction."""
    actions = plan.max_actions()
    if actions > layout.TRANSACTION_MAX_ACTIONS:
        raise BatchTooLarge(
            collection, "write actions", actions, layout.TRANSACTION_MAX_ACTIONS
        )


def check_item_sizes(collection: str, envelopes: list[Envelope]) -> None:
    """Refuse, before any write, an event whose item exceeds DynamoDB's limit."""
    for envelope in envelopes:
        size = layout.item_size(layout.event_item(envelope))
        if size > layout.ITEM_LIMIT_BYTES:
            raise EventTooLarge(collection, size, layout.ITEM_LIMIT_BYTES)


def check_transaction_size(collection: str, actions: list[PutTypeDef]) -> None:
    """Refuse a transaction over DynamoDB's 4 MB aggregate limit."""
    size = sum(layout.item_size(action["Item"]) for action in actions)
    if size > layout.TRANSACTION_LIMIT_BYTES:
        raise BatchTooLarge(collection, "bytes", size, layout.TRANSACTION_LIMIT_BYTES)


def transaction_puts(
    table: str, envelopes: list[Envelope]
) -> tuple[list[PutTypeDef], dict[int, str]]:
    """Put actions of a transaction, and which action index holds which key."""
    actions: list[PutTypeDef] = []
    keys: dict[int, str] = {}
    for envelope in envelopes:
        actions.append(put_absent(table, layout.event_item(envelope)))
        if envelope.idempotency_key is not None:
            keys[len(actions)] = envelope.idempotency_key
            key_put = put_absent(table, layout.key_item(envelope))
            key_put["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            actions.append(key_put)
    return actions, keys


def put_absent(table: str, item: layout.Item) -> PutTypeDef:
    """A transaction Put that fails when the item exists."""
    return {
        "TableName": table,
        "Item": item,
        "ConditionExpression": "attribute_not_exists(#s)",
        "ExpressionAttributeNames": {"#s": JOURNAL_SORT_KEY},
    }


def cancellation(
    collection: str, head: int, error: ClientError, keys: dict[int, str]
) -> JournalError:
    """The typed outcome of a cancelled TransactWriteItems.

    ``keys`` maps action indexes to the idempotency key whose item that
    action wrote; DynamoDB returns one cancellation reason per action, in
    order (API reference, TransactWriteItems, ``CancellationReasons``).
    """
    response: dict[str, Any] = dict(error.response)
    reasons: list[dict[str, Any]] = response.get("CancellationReasons", [])
    existing: dict[str, int] = {}
    for index, reason in enumerate(reasons):
        if index in keys and reason.get("Code") == "ConditionalCheckFailed":
            item = reason.get("Item")
            existing[keys[index]] = layout.stored_seq(item) if item else UNKNOWN_SEQ
    if existing:
        return KeysExist(collection, existing)
    codes = {str(reason.get("Code")) for reason in reasons} - {"None"}
    if codes and codes <= _RETRYABLE:
        return LostRace(collection, head + 1)
    return JournalUnavailable(
        f"append to {collection!r} was cancelled: {sorted(codes) or error}"
    )
