"""The DynamoDB status mirror (moto)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.status import CollectionStatus
from pipeline.status_dynamodb import (
    DynamoDBStatusStore,
    StatusStoreUnavailable,
    create_status_table,
)
from tests.aws.moto_backends import STATUS_TABLE, MotoAws


@pytest.fixture
def store(aws: MotoAws) -> DynamoDBStatusStore:
    create_status_table(aws.dynamodb, STATUS_TABLE)
    return DynamoDBStatusStore(aws.dynamodb, STATUS_TABLE)


def full_status(collection: str = "lines") -> CollectionStatus:
    return CollectionStatus(
        collection=collection,
        applied_seq=1234,
        live_version="20260301T120000.123456Z-7f3a",
        promoted_at=datetime(2026, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC),
        last_batch_events=500,
        last_batch_seconds=0.1 + 0.2,  # not exactly representable
        blocked_seq=1235,
        blocked_error="delta sha256 mismatch",
    )


def test_a_status_reads_back_exactly(store: DynamoDBStatusStore) -> None:
    status = full_status()

    store.put(status)

    assert store.get("lines") == status


def test_absent_fields_read_back_as_none(store: DynamoDBStatusStore) -> None:
    status = CollectionStatus(collection="words", applied_seq=0, live_version=None)

    store.put(status)

    assert store.get("words") == status


def test_put_replaces_the_whole_status(store: DynamoDBStatusStore) -> None:
    store.put(full_status())
    cleared = CollectionStatus(collection="lines", applied_seq=1235, live_version="v2")

    store.put(cleared)

    assert store.get("lines") == cleared


def test_all_lists_every_collection_sorted(store: DynamoDBStatusStore) -> None:
    for name in ["words", "lines", "receipts"]:
        store.put(full_status(name))

    assert [status.collection for status in store.all()] == [
        "lines",
        "receipts",
        "words",
    ]
    assert store.get("unknown") is None


def test_an_unreachable_table_is_reported_as_a_status_error(aws: MotoAws) -> None:
    with pytest.raises(StatusStoreUnavailable, match="no-such-table"):
        DynamoDBStatusStore(aws.dynamodb, "no-such-table").all()
