"""The receipts-table stream adapter, on a recorded batch of stream records."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from journal import stream_adapter
from journal.base import AppendResult, Journal
from journal.dynamodb import DynamoDBJournal
from journal.errors import JournalUnavailable
from journal.events import (
    LabelUpdate,
    MetadataUpdate,
    NewEvent,
    Payload,
    RecordsDelete,
)
from journal.stream_adapter import StreamAdapter
from tests.aws.moto_backends import JOURNAL_TABLE, MotoAws

IMAGE = "3f2a9c1e-0b7d-4e55-9a21-6c0d8e4f1a2b"
RECEIPTS = "receipts"
BATCH = json.loads(
    (Path(__file__).parent / "data" / "receipts_stream_batch.json").read_text()
)
WORD_123 = "RECEIPT#00001#LINE#00002#WORD#00003"


def place(**changes: Any) -> MetadataUpdate:
    return MetadataUpdate(image_id=IMAGE, receipt_id=1, changes=changes)


def delete(
    receipt: int, line: int | None = None, word: int | None = None
) -> RecordsDelete:
    return RecordsDelete(image_id=IMAGE, receipt_id=receipt, line_id=line, word_id=word)


INSERTED_PLACE = place(
    merchant_name="Sprouts",
    merchant_category="grocery_store",
    address="123 Main St, Westlake Village, CA",
    phone_number="(805) 555-0100",
    place_id="ChIJ-sprouts-1",
)
RENAMED_PLACE = place(merchant_name="Sprouts Farmers Market", phone_number=None)
REMOVED_PLACE = place(
    merchant_name=None, merchant_category=None, address=None, place_id=None
)
WORD_123_LABELS = LabelUpdate(
    image_id=IMAGE,
    receipt_id=1,
    line_id=2,
    word_id=3,
    valid_labels=["TOTAL"],
    invalid_labels=["DATE"],
    status="PENDING",  # the ADDRESS label still waits for review
    proposed_by="reviewer",
    validated_at=datetime(2026, 3, 1, 11, 0, tzinfo=UTC),
)
WORD_111_LABELS = LabelUpdate(image_id=IMAGE, receipt_id=1, line_id=1, word_id=1)

#: (record number in the batch, payload) per collection, in append order.
EXPECTED: dict[str, list[tuple[int, Payload]]] = {
    "lines": [
        (1, INSERTED_PLACE),
        (3, RENAMED_PLACE),
        (9, delete(2, 5)),
        (10, delete(3)),
        (15, REMOVED_PLACE),
    ],
    "words": [
        (1, INSERTED_PLACE),
        (3, RENAMED_PLACE),
        (4, WORD_123_LABELS),
        (5, WORD_123_LABELS),
        (7, WORD_111_LABELS),
        (8, delete(2, 3, 4)),
        (9, delete(2, 5)),
        (10, delete(3)),
        (15, REMOVED_PLACE),
    ],
}


def event_id(number: int) -> str:
    return str(BATCH["Records"][number - 1]["eventID"])


def label_item(label: str, status: str, by: str, at: str) -> dict[str, Any]:
    return {
        "PK": {"S": f"IMAGE#{IMAGE}"},
        "SK": {"S": f"{WORD_123}#LABEL#{label}"},
        "label": {"S": label},
        "validation_status": {"S": status},
        "label_proposed_by": {"S": by},
        "timestamp_added": {"S": at},
    }


@pytest.fixture
def receipts(aws: MotoAws) -> str:
    """The receipts table as it is after the recorded batch."""
    aws.dynamodb.create_table(
        TableName=RECEIPTS,
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    items = [
        {"PK": {"S": f"IMAGE#{IMAGE}"}, "SK": {"S": WORD_123}, "text": {"S": "12.99"}},
        label_item("TOTAL", "VALID", "gpt-labeler", "2026-03-01T10:00:00+00:00"),
        label_item("DATE", "INVALID", "reviewer", "2026-03-01T11:00:00+00:00"),
        label_item("ADDRESS", "PENDING", "gpt-labeler", "2026-03-01T09:00:00+00:00"),
    ]
    for item in items:
        aws.dynamodb.put_item(TableName=RECEIPTS, Item=item)
    return RECEIPTS


@pytest.fixture
def adapter(aws: MotoAws, journal: DynamoDBJournal, receipts: str) -> StreamAdapter:
    return StreamAdapter(journal, aws.dynamodb, receipts)


def stored(journal: Journal, collection: str) -> list[tuple[str | None, Payload]]:
    return [(e.idempotency_key, e.payload) for e in journal.read(collection)]


def expected(collection: str) -> list[tuple[str | None, Payload]]:
    return [(f"receipts-stream:{event_id(n)}", p) for n, p in EXPECTED[collection]]


def test_a_recorded_batch_becomes_exactly_the_expected_events(
    adapter: StreamAdapter, journal: DynamoDBJournal
) -> None:
    response = adapter.handle(BATCH["Records"])

    assert response == {"batchItemFailures": []}
    assert stored(journal, "lines") == expected("lines")
    assert stored(journal, "words") == expected("words")
    producers = {e.producer for e in journal.read("words")}
    assert producers == {"receipts-stream-adapter"}


def test_replaying_the_batch_appends_nothing(
    adapter: StreamAdapter, journal: DynamoDBJournal
) -> None:
    adapter.handle(BATCH["Records"])
    heads = {name: journal.head(name) for name in ("lines", "words")}

    response = adapter.handle(BATCH["Records"])

    assert response == {"batchItemFailures": []}
    assert {name: journal.head(name) for name in ("lines", "words")} == heads
    assert stored(journal, "words") == expected("words")


def test_a_label_can_never_be_both_valid_and_invalid(
    aws: MotoAws, adapter: StreamAdapter, receipts: str
) -> None:
    (record,) = [r for r in BATCH["Records"] if r["eventID"] == event_id(4)]

    (event,) = adapter.events_for(record)

    assert isinstance(event.payload, LabelUpdate)
    assert not set(event.payload.valid_labels) & set(event.payload.invalid_labels)


def test_a_failing_record_is_reported_and_nothing_after_it_is_appended(
    aws: MotoAws, journal: DynamoDBJournal
) -> None:
    # No receipts table: the first label record (number 4) cannot be read.
    adapter = StreamAdapter(journal, aws.dynamodb, "no-such-table")

    response = adapter.handle(BATCH["Records"])

    failed_at = BATCH["Records"][3]["dynamodb"]["SequenceNumber"]
    assert response == {"batchItemFailures": [{"itemIdentifier": failed_at}]}
    assert stored(journal, "words") == expected("words")[:2]
    assert stored(journal, "lines") == expected("lines")[:2]


class FailingWords(Journal):
    """A journal whose ``words`` appends fail."""

    def __init__(self, inner: Journal) -> None:
        super().__init__()
        self.inner = inner

    def _append_batch(
        self, collection: str, events: Sequence[NewEvent]
    ) -> list[AppendResult]:
        if collection == "words":
            raise JournalUnavailable("words is down")
        return self.inner.append_batch(events)

    def read(self, collection: str, after: int = 0, upto: int | None = None) -> Any:
        return self.inner.read(collection, after, upto)

    def head(self, collection: str) -> int:
        return self.inner.head(collection)

    def collections(self) -> list[str]:
        return self.inner.collections()


def test_a_failed_append_reports_its_first_record_and_a_retry_completes(
    aws: MotoAws, journal: DynamoDBJournal, receipts: str
) -> None:
    broken = StreamAdapter(FailingWords(journal), aws.dynamodb, receipts)

    response = broken.handle(BATCH["Records"])

    first = BATCH["Records"][0]["dynamodb"]["SequenceNumber"]
    assert response == {"batchItemFailures": [{"itemIdentifier": first}]}
    assert journal.head("words") == 0

    # Lambda retries from the reported record; lines must not double up.
    StreamAdapter(journal, aws.dynamodb, receipts).handle(BATCH["Records"])
    assert stored(journal, "lines") == expected("lines")
    assert stored(journal, "words") == expected("words")


def test_a_modify_without_an_old_image_counts_every_watched_field(
    adapter: StreamAdapter,
) -> None:
    record = copy.deepcopy(BATCH["Records"][2])
    del record["dynamodb"]["OldImage"]

    events = adapter.events_for(record)

    assert [e.collection for e in events] == ["lines", "words"]
    assert isinstance(events[0].payload, MetadataUpdate)
    assert events[0].payload.changes["merchant_name"] == "Sprouts Farmers Market"


def test_the_lambda_handler_builds_the_adapter_from_the_environment(
    aws: MotoAws,
    journal: DynamoDBJournal,
    receipts: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOURNAL_URL", f"dynamodb://{JOURNAL_TABLE}")
    monkeypatch.setenv("DYNAMODB_TABLE_NAME", receipts)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("KINESIS_STREAM_NAME", raising=False)
    monkeypatch.setattr("chroma_journal.logs.configure_logging", lambda **_: None)
    stream_adapter._adapter_from_environment.cache_clear()
    try:
        response = stream_adapter.handler(BATCH, context=None)
    finally:
        stream_adapter._adapter_from_environment.cache_clear()

    assert response == {"batchItemFailures": []}
    assert stored(journal, "words") == expected("words")
