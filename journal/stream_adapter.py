"""Receipts-table DynamoDB Stream → journal events (a Lambda function).

Each stream record that changes something the collections hold becomes
events, keyed by the record's ``eventID`` so that a retried batch appends
nothing twice::

    place INSERT/MODIFY/REMOVE   → metadata_update   lines, words
    label INSERT/MODIFY/REMOVE   → label_update      words  (whole label state)
    receipt REMOVE               → records_delete    lines, words
    line REMOVE                  → records_delete    lines, words
    word REMOVE                  → records_delete    words

A MODIFY that leaves every watched field as it was produces nothing. The
stream must carry both images (``NEW_AND_OLD_IMAGES``); without an old image
every watched field present counts as changed.

A label event carries the word's whole label state, read from the receipts
table when the record is handled (strongly consistent), not the state in
the record: several records of one word then give identical events, and the
last one applied is always the current state.

Failures are reported the way Lambda's ``ReportBatchItemFailures`` expects.
For a stream Lambda resumes from the lowest reported sequence number (AWS
Lambda developer guide, "Configuring partial batch response with DynamoDB
Streams"), so the first failing record is reported and nothing after it is
appended.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from boto3.dynamodb.types import TypeDeserializer

from journal import receipt_items as items
from journal.base import Journal
from journal.events import MetadataUpdate, NewEvent, Payload, RecordsDelete

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = structlog.get_logger(__name__)

LINES = "lines"
WORDS = "words"
PRODUCER = "receipts-stream-adapter"
KEY_PREFIX = "receipts-stream:"
#: Events per append_batch; with their idempotency key items they stay
#: within one DynamoDB transaction (100 actions).
APPEND_CHUNK = 40
RECEIPTS_PARTITION_KEY = "PK"
RECEIPTS_SORT_KEY = "SK"

_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class _Planned:
    """An event and the index of the stream record it came from."""

    record: int
    event: NewEvent


class StreamAdapter:
    """Turns receipts-table stream records into journal events."""

    def __init__(
        self, journal: Journal, receipts: DynamoDBClient, receipts_table: str
    ) -> None:
        self._journal = journal
        self._receipts = receipts
        self._receipts_table = receipts_table

    def handle(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Append the events of ``records``; the Lambda partial-batch response."""
        planned, failed_at = self._translate_all(records)
        failed_at = self._append_all(planned, failed_at)
        appended = sum(1 for p in planned if failed_at is None or p.record < failed_at)
        log.info(
            "stream_batch_handled",
            records=len(records),
            events=appended,
            failed_at=failed_at,
        )
        if failed_at is None:
            return {"batchItemFailures": []}
        sequence = records[failed_at]["dynamodb"]["SequenceNumber"]
        return {"batchItemFailures": [{"itemIdentifier": sequence}]}

    def events_for(self, record: Mapping[str, Any]) -> list[NewEvent]:
        """The events one stream record produces (often none)."""
        stream = record["dynamodb"]
        keys = _plain(stream["Keys"])
        ref = items.parse_key(
            str(keys.get(RECEIPTS_PARTITION_KEY, "")),
            str(keys.get(RECEIPTS_SORT_KEY, "")),
        )
        if ref is None:
            return []
        old = _plain(stream.get("OldImage", {}))
        new = _plain(stream.get("NewImage", {}))
        key = KEY_PREFIX + str(record["eventID"])
        targets = self._payloads(ref, str(record["eventName"]), old, new)
        return [
            NewEvent(
                collection=collection,
                payload=payload,
                idempotency_key=key,
                producer=PRODUCER,
            )
            for collection, payload in targets
        ]

    # -- translating ----------------------------------------------------------

    def _payloads(
        self, ref: items.ItemRef, name: str, old: dict[str, Any], new: dict[str, Any]
    ) -> list[tuple[str, Payload]]:
        """(collection, payload) pairs for one changed item."""
        if ref.kind == "place":
            return _place_payloads(ref, old, new)
        if ref.kind == "label":
            if not items.changed(old, new, items.LABEL_FIELDS):
                return []
            return [(WORDS, items.label_state(ref, self._labels_of(ref)))]
        if name == "REMOVE":
            return _removal_payloads(ref)
        return []  # receipts, lines and words arrive as deltas

    def _labels_of(self, ref: items.ItemRef) -> list[dict[str, Any]]:
        """Every label item of the word, read strongly consistently."""
        query: dict[str, Any] = {
            "TableName": self._receipts_table,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {
                "#pk": RECEIPTS_PARTITION_KEY,
                "#sk": RECEIPTS_SORT_KEY,
            },
            "ExpressionAttributeValues": {
                ":pk": {"S": f"IMAGE#{ref.image_id}"},
                ":prefix": {"S": ref.label_prefix()},
            },
            "ConsistentRead": True,
        }
        found: list[dict[str, Any]] = []
        while True:
            page = self._receipts.query(**query)
            found.extend(_plain(item) for item in page["Items"])
            if not page.get("LastEvaluatedKey"):
                return found
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _translate_all(
        self, records: Sequence[Mapping[str, Any]]
    ) -> tuple[list[_Planned], int | None]:
        planned: list[_Planned] = []
        for index, record in enumerate(records):
            try:
                events = self.events_for(record)
            # Any failure of one record must become a partial-batch failure
            # for that record, never an exception that fails the whole batch.
            except Exception:
                _log_failure("stream_record_failed", record)
                return planned, index
            planned.extend(_Planned(index, event) for event in events)
        return planned, None

    # -- appending ------------------------------------------------------------

    def _append_all(self, planned: list[_Planned], failed_at: int | None) -> int | None:
        """Append per collection in chunks; the lowest failing record index."""
        for collection in (LINES, WORDS):
            mine = [p for p in planned if p.event.collection == collection]
            for start in range(0, len(mine), APPEND_CHUNK):
                chunk = [
                    p
                    for p in mine[start : start + APPEND_CHUNK]
                    if failed_at is None or p.record < failed_at
                ]
                if not chunk:
                    break
                try:
                    self._journal.append_batch([p.event for p in chunk])
                except Exception:
                    log.exception(
                        "stream_append_failed",
                        collection=collection,
                        first_record=chunk[0].record,
                    )
                    failed_at = chunk[0].record
                    break
        return failed_at


def _place_payloads(
    ref: items.ItemRef, old: dict[str, Any], new: dict[str, Any]
) -> list[tuple[str, Payload]]:
    changes = items.place_changes(old, new)
    if not changes:
        return []
    update = MetadataUpdate(
        image_id=ref.image_id, receipt_id=ref.receipt_id, changes=changes
    )
    return [(LINES, update), (WORDS, update)]


def _removal_payloads(ref: items.ItemRef) -> list[tuple[str, Payload]]:
    """A removed receipt or line leaves both collections; a removed word
    only ``words`` (its line stays)."""
    delete = RecordsDelete(
        image_id=ref.image_id,
        receipt_id=ref.receipt_id,
        line_id=ref.line_id,
        word_id=ref.word_id,
    )
    if ref.kind == "word":
        return [(WORDS, delete)]
    return [(LINES, delete), (WORDS, delete)]


def _plain(image: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB-JSON image as Python values."""
    return {name: _deserializer.deserialize(value) for name, value in image.items()}


def _log_failure(event: str, record: Mapping[str, Any]) -> None:
    stream = record.get("dynamodb", {})
    log.exception(
        event,
        event_id=record.get("eventID"),
        event_name=record.get("eventName"),
        sequence_number=stream.get("SequenceNumber"),
    )


# -- the Lambda entry point -----------------------------------------------------


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """Lambda handler for the receipts table's stream event source."""
    return _adapter_from_environment().handle(event.get("Records", []))


@functools.cache
def _adapter_from_environment() -> StreamAdapter:
    """Built once per Lambda container from the environment, then reused."""
    from chroma_journal.logs import configure_logging
    from chroma_journal.settings import Settings
    from chroma_journal.wiring import ConfigurationError, open_journal
    from journal.aws_clients import make_client

    settings = Settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    if not settings.dynamodb_table_name:
        raise ConfigurationError(
            "DYNAMODB_TABLE_NAME (the receipts table the adapter reads) is not set"
        )
    receipts = make_client(
        "dynamodb",
        region=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
    )
    return StreamAdapter(open_journal(settings), receipts, settings.dynamodb_table_name)
