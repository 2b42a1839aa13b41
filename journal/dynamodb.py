"""The production journal on one DynamoDB table (DESIGN section 4).

An append reads the collection's head with a strongly consistent Query and
writes ``head + 1 ...`` under ``attribute_not_exists``, so a writer only
ever extends the sequence by one and it stays gapless. Two writers that read
the same head race; the loser sees its condition fail and retries with a
fresh head (bounded, with jittered backoff)::

    writer A   head=7 ─ put 8 ✓
    writer B   head=7 ───── put 8 ✗ (exists) ─ wait ─ head=8 ─ put 9 ✓

An event with an idempotency key is written together with a key item in one
``TransactWriteItems``; when the key item already exists the transaction is
cancelled, nothing is written, and the first event stored under the key is
returned. Item layout: :mod:`journal._dynamodb_layout`.

Throttling and transient errors are retried by botocore (see
:mod:`journal.aws_clients`); only the append race is retried here.

Costs, counted by ``bench/aws_calls.py``: an uncontended append is two calls
(the head Query, then PutItem or TransactWriteItems), a batch too; a repeated
key adds a GetItem of the first event. Known limits: idempotency key items
are kept for ever, like the events they name (one extra item per keyed
event); writers contending for one collection spend extra calls on lost
races (about three per append with eight writers, measured on moto), since
a collection's sequence admits one append at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from journal import _dynamodb_layout as layout
from journal._dynamodb_batch import (
    AppendContended,
    BatchPlan,
    BatchTooLarge,
    KeysExist,
    LostRace,
    cancellation,
    check_action_count,
    check_item_sizes,
    check_transaction_size,
    transaction_puts,
)
from journal._dynamodb_layout import create_journal_table
from journal.aws_schema import JOURNAL_PARTITION_KEY, JOURNAL_SORT_KEY
from journal.base import (
    DEFAULT_MAX_EVENT_BYTES,
    AppendResult,
    Clock,
    Journal,
    Publisher,
    decode_stored,
    utc_now,
)
from journal.errors import JournalError, JournalUnavailable
from journal.events import Envelope, NewEvent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PutTypeDef

__all__ = [
    "AppendContended",
    "BatchTooLarge",
    "DynamoDBJournal",
    "create_journal_table",
]

log = structlog.get_logger(__name__)

#: Attempts of one append under contention before giving up.
DEFAULT_MAX_RACE_RETRIES = 20
#: Jittered backoff between attempts of a contended append ("full jitter",
#: so that writers that lost together do not retry together). With 8 writers
#: on one collection (moto, tests/aws) this spent about 3 calls per append,
#: where a 5 ms first step spent about 4 and took longer.
RACE_WAIT = wait_random_exponential(multiplier=0.02, max=0.5)
_KEY_NAMES = {"#c": JOURNAL_PARTITION_KEY, "#s": JOURNAL_SORT_KEY}


class DynamoDBJournal(Journal):
    """The journal in a DynamoDB table keyed (collection, seq)."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        clock: Clock = utc_now,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        publisher: Publisher | None = None,
        max_race_retries: int = DEFAULT_MAX_RACE_RETRIES,
    ) -> None:
        if max_event_bytes > layout.ITEM_LIMIT_BYTES:
            raise ValueError(
                f"max_event_bytes {max_event_bytes} exceeds DynamoDB's item "
                f"limit of {layout.ITEM_LIMIT_BYTES} bytes"
            )
        super().__init__(
            clock=clock, max_event_bytes=max_event_bytes, publisher=publisher
        )
        self._client = client
        self._table = table_name
        self._max_race_retries = max_race_retries

    # -- the Journal contract -------------------------------------------------

    def _append_batch(
        self, collection: str, events: Sequence[NewEvent]
    ) -> list[AppendResult]:
        plan = BatchPlan(events)
        check_action_count(collection, plan)
        retrying = Retrying(
            stop=stop_after_attempt(self._max_race_retries),
            wait=RACE_WAIT,
            retry=retry_if_exception_type(LostRace),
            before_sleep=_log_race,
            reraise=True,
        )
        try:
            results = retrying(self._attempt, collection, plan)
        except LostRace as race:
            raise AppendContended(collection, self._max_race_retries) from race
        log.debug(
            "journal_appended",
            collection=collection,
            seqs=[result.seq for result in results if not result.duplicate],
            duplicates=sum(result.duplicate for result in results),
        )
        return results

    def read(
        self, collection: str, after: int = 0, upto: int | None = None
    ) -> Iterator[Envelope]:
        """Events with ``after < seq <= upto`` in order, one page at a time,
        read strongly consistently."""
        values: dict[str, Any] = {":c": {"S": collection}}
        if upto is None:
            condition = "#c = :c AND #s > :after"
            values[":after"] = {"N": str(after)}
        elif upto > after:
            condition = "#c = :c AND #s BETWEEN :lo AND :hi"
            values[":lo"] = {"N": str(after + 1)}
            values[":hi"] = {"N": str(upto)}
        else:
            return
        items = self._query_pages(
            "read",
            collection,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ProjectionExpression="#s, #e",
            ExpressionAttributeNames={**_KEY_NAMES, "#e": layout.ENVELOPE},
        )
        for item in items:
            seq = int(item[JOURNAL_SORT_KEY]["N"])
            yield decode_stored(collection, seq, item[layout.ENVELOPE]["S"])

    def head(self, collection: str) -> int:
        """The highest ``seq`` of ``collection`` (strongly consistent)."""
        items = self._query_pages(
            "head",
            collection,
            KeyConditionExpression="#c = :c",
            ExpressionAttributeValues={":c": {"S": collection}},
            ProjectionExpression="#s",
            ExpressionAttributeNames=_KEY_NAMES,
            ScanIndexForward=False,
            Limit=1,
        )
        newest = next(items, None)
        return int(newest[JOURNAL_SORT_KEY]["N"]) if newest else 0

    def collections(self) -> list[str]:
        """Every collection with at least one event, sorted.

        Reads the registry partition, which holds one item per collection
        (written with its first event), rather than scanning every event.
        """
        items = self._query_pages(
            "collections",
            layout.REGISTRY_PARTITION,
            KeyConditionExpression="#c = :c",
            ExpressionAttributeValues={":c": {"S": layout.REGISTRY_PARTITION}},
            ProjectionExpression="#n, #p",
            ExpressionAttributeNames={
                "#c": JOURNAL_PARTITION_KEY,
                "#n": layout.NAME,
                "#p": layout.PROVISIONAL,
            },
        )
        listed = [
            item[layout.NAME]["S"]
            for item in items
            if layout.PROVISIONAL not in item or self.head(item[layout.NAME]["S"])
        ]
        return sorted(listed)

    def last_seq_at(self, collection: str, at: datetime) -> int:
        """The highest ``seq`` recorded at or before ``at`` (0 when none).

        Walks the collection newest first; the first match is the answer, so
        a recent ``at`` costs one page even when writers' clocks disagree.
        """
        items = self._query_pages(
            "last_seq_at",
            collection,
            KeyConditionExpression="#c = :c",
            FilterExpression="#r <= :at",
            ExpressionAttributeValues={
                ":c": {"S": collection},
                ":at": {"S": layout.time_key(at)},
            },
            ProjectionExpression="#s",
            ExpressionAttributeNames={**_KEY_NAMES, "#r": layout.RECORDED_AT},
            ScanIndexForward=False,
        )
        newest = next(items, None)
        return int(newest[JOURNAL_SORT_KEY]["N"]) if newest else 0

    # -- appending ------------------------------------------------------------

    def _attempt(self, collection: str, plan: BatchPlan) -> list[AppendResult]:
        """One try at the next seqs; raises LostRace when another writer won.

        Keys found to exist already are resolved and the rest of the batch is
        retried at once: each round shrinks the batch, so this loop ends.
        """
        while fresh := plan.pending():
            head = self.head(collection)
            envelopes = [
                self._stamp(event, head + offset)
                for offset, event in enumerate(fresh, start=1)
            ]
            check_item_sizes(collection, envelopes)
            try:
                self._write(collection, head, envelopes)
            except KeysExist as exists:
                plan.resolve(self._stored(collection, exists.seqs))
                continue
            return plan.results(envelopes)
        return plan.results([])

    def _write(self, collection: str, head: int, envelopes: list[Envelope]) -> None:
        only = envelopes[0]
        if len(envelopes) == 1 and only.idempotency_key is None and head > 0:
            self._put_one(only)
        else:
            self._transact(collection, head, envelopes)

    def _put_one(self, envelope: Envelope) -> None:
        """The cheapest append: one conditional PutItem."""
        with self._translated("append", envelope.collection):
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=layout.event_item(envelope),
                    ConditionExpression="attribute_not_exists(#s)",
                    ExpressionAttributeNames={"#s": JOURNAL_SORT_KEY},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if _code(error) != "ConditionalCheckFailedException":
                    raise
                # A retry by botocore after a lost response finds our own
                # item: the append succeeded.
                response: dict[str, Any] = dict(error.response)
                stored: dict[str, Any] = response.get("Item", {})
                if stored.get(layout.EVENT_ID, {}).get("S") != envelope.event_id:
                    raise LostRace(envelope.collection, envelope.seq) from error

    def _transact(self, collection: str, head: int, envelopes: list[Envelope]) -> None:
        """Events, their key items and (for a first event) the registry item,
        all or nothing. botocore fills ``ClientRequestToken``, so its own
        retries of this call are idempotent on the service side."""
        actions, keys = transaction_puts(self._table, envelopes)
        if head == 0:
            self._add_registry(collection, actions)
        check_transaction_size(collection, actions)
        with self._translated("append", collection):
            try:
                self._client.transact_write_items(
                    TransactItems=[{"Put": action} for action in actions]
                )
            except ClientError as error:
                if _code(error) != "TransactionCanceledException":
                    raise
                raise cancellation(collection, head, error, keys) from error

    def _add_registry(self, collection: str, actions: list[PutTypeDef]) -> None:
        """List a new collection in the registry with its first event.

        A first batch that fills the transaction leaves no room for the
        registry item; it is then written ahead, marked provisional, and
        :meth:`collections` checks such a collection's head before listing it.
        """
        if len(actions) < layout.TRANSACTION_MAX_ACTIONS:
            registry: PutTypeDef = {
                "TableName": self._table,
                "Item": layout.registry_item(collection),
            }
            actions.append(registry)
            return
        with self._translated("append", collection):
            self._client.put_item(
                TableName=self._table,
                Item=layout.registry_item(collection, provisional=True),
            )

    def _stored(self, collection: str, seqs: dict[str, int]) -> dict[str, Envelope]:
        """The envelopes first stored under existing idempotency keys."""
        found: dict[str, Envelope] = {}
        for key, seq in seqs.items():
            if seq < 0:
                seq = self._key_seq(collection, key)
            with self._translated("append", collection):
                item = self._client.get_item(
                    TableName=self._table,
                    Key=layout.key_of(collection, seq),
                    ConsistentRead=True,
                ).get("Item")
            if item is None:  # both are written in one transaction
                raise JournalError(
                    f"{collection}: idempotency key {key!r} names seq {seq}, "
                    "which the journal does not hold"
                )
            found[key] = layout.envelope_of(item)
        return found

    def _key_seq(self, collection: str, key: str) -> int:
        with self._translated("append", collection):
            item = self._client.get_item(
                TableName=self._table,
                Key=layout.key_of(
                    layout.key_partition(collection, key), layout.KEY_ITEM_SEQ
                ),
                ConsistentRead=True,
            )["Item"]
        return layout.stored_seq(item)

    # -- reading --------------------------------------------------------------

    def _query_pages(
        self, operation: str, collection: str, **query: Any
    ) -> Iterator[layout.Item]:
        """Items of a strongly consistent Query, following LastEvaluatedKey
        only as far as the caller iterates."""
        while True:
            with self._translated(operation, collection):
                page = self._client.query(
                    TableName=self._table, ConsistentRead=True, **query
                )
            yield from page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return
            query["ExclusiveStartKey"] = start

    @contextmanager
    def _translated(self, operation: str, collection: str) -> Iterator[None]:
        """The one place where boto3 errors become journal errors."""
        try:
            yield
        except (ClientError, BotoCoreError) as error:
            raise JournalUnavailable(
                f"journal {operation} on table {self._table!r} for "
                f"{collection!r} failed: {error}"
            ) from error


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _log_race(state: Any) -> None:
    log.debug("journal_append_race_lost", attempt=state.attempt_number)
