"""Bookkeeping of one batch append on DynamoDB: duplicates and outcomes.

A batch may repeat an idempotency key, and some of its keys may have been
stored by earlier appends. :class:`BatchPlan` tracks which events still have
to be written; a cancelled transaction is turned into a typed outcome
(:class:`KeysExist` or :class:`LostRace`) by :func:`cancellation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from journal import _dynamodb_layout as layout
from journal.base import AppendResult
from journal.errors import JournalError, JournalUnavailable
from journal.events import Envelope, NewEvent

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
