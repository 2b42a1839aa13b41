"""DynamoDB journal behaviour beyond the shared contract suite (moto)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from journal import _dynamodb_layout as layout
from journal.aws_schema import JOURNAL_PARTITION_KEY, JOURNAL_SORT_KEY
from journal.dynamodb import AppendContended, BatchTooLarge, DynamoDBJournal
from journal.errors import EventTooLarge, JournalUnavailable
from journal.events import MetadataUpdate, NewEvent
from tests.aws.moto_backends import JOURNAL_TABLE, MotoAws, SerializedClient
from tests.aws.support import CallLog, Interposer, ManualClock, client_error, event

WRITES = {"PutItem", "TransactWriteItems"}


def sized_event(json_bytes: int, key: str | None = None) -> NewEvent:
    """An event whose NewEvent JSON is exactly ``json_bytes`` long."""
    base = NewEvent(
        collection="lines",
        payload=MetadataUpdate(image_id="img", receipt_id=1, changes={"note": ""}),
        event_id="01J00000000000000000000000",
        idempotency_key=key,
    )
    padding = json_bytes - len(base.model_dump_json().encode())
    payload = MetadataUpdate(
        image_id="img", receipt_id=1, changes={"note": "x" * padding}
    )
    return base.model_copy(update={"payload": payload})


# -- concurrency --------------------------------------------------------------


@pytest.mark.slow
def test_eight_threads_of_200_keyed_appends_get_seqs_1_to_1600_once_each(
    aws: MotoAws,
) -> None:
    journal = DynamoDBJournal(
        SerializedClient(aws.dynamodb),  # type: ignore[arg-type]
        JOURNAL_TABLE,
        max_race_retries=500,
    )

    def writer(thread: int) -> list[tuple[int, bool]]:
        results = []
        for i in range(200):
            result = journal.append(event(key=f"t{thread}-{i}", reason=f"{thread}/{i}"))
            results.append((result.seq, result.duplicate))
        return results

    with ThreadPoolExecutor(max_workers=8) as pool:
        first = list(pool.map(writer, range(8)))
    with ThreadPoolExecutor(max_workers=8) as pool:
        again = list(pool.map(writer, range(8)))

    seqs = sorted(seq for results in first for seq, _ in results)
    assert seqs == list(range(1, 1601))
    assert not any(duplicate for results in first for _, duplicate in results)
    for results in first:  # each writer's appends are ordered as it made them
        assert [seq for seq, _ in results] == sorted(seq for seq, _ in results)
    assert again == [[(seq, True) for seq, _ in results] for results in first]
    stored = list(journal.read("lines"))
    assert [envelope.seq for envelope in stored] == list(range(1, 1601))
    assert len({envelope.idempotency_key for envelope in stored}) == 1600
    assert journal.head("lines") == 1600


def test_a_lost_race_is_retried_with_a_fresh_head(
    aws: MotoAws, clock: ManualClock
) -> None:
    rival = DynamoDBJournal(aws.dynamodb, JOURNAL_TABLE, clock=clock)
    rival.append(event(reason="first"))
    proxy = Interposer(aws.dynamodb)
    journal = DynamoDBJournal(proxy, JOURNAL_TABLE, clock=clock)  # type: ignore[arg-type]

    def rival_writes_first(real: Any, **kwargs: Any) -> Any:
        proxy.around.pop("put_item")
        rival.append(event(reason="rival"))  # takes seq 2 between head and put
        return real(**kwargs)

    proxy.around["put_item"] = rival_writes_first
    mine = journal.append(event(reason="mine"))

    assert mine.seq == 3
    reasons = [e.payload.reason for e in journal.read("lines")]  # type: ignore[union-attr]
    assert reasons == ["first", "rival", "mine"]


def test_an_append_that_always_loses_gives_up_with_a_clear_error(
    aws: MotoAws, journal: DynamoDBJournal
) -> None:
    journal.append(event())
    proxy = Interposer(aws.dynamodb)
    proxy.around["put_item"] = lambda real, **kwargs: (_ for _ in ()).throw(
        client_error(
            "ConditionalCheckFailedException", "PutItem", Item={"event_id": {"S": "x"}}
        )
    )
    loser = DynamoDBJournal(proxy, JOURNAL_TABLE, max_race_retries=3)  # type: ignore[arg-type]

    with pytest.raises(AppendContended) as caught:
        loser.append(event())

    assert caught.value.collection == "lines"
    assert caught.value.attempts == 3
    assert journal.head("lines") == 1


def test_a_transaction_conflict_is_retried_like_a_lost_race(
    aws: MotoAws, journal: DynamoDBJournal
) -> None:
    proxy = Interposer(aws.dynamodb)
    conflict = client_error(
        "TransactionCanceledException",
        "TransactWriteItems",
        CancellationReasons=[{"Code": "TransactionConflict"}, {"Code": "None"}],
    )

    def conflict_once(real: Any, **kwargs: Any) -> Any:
        proxy.around.pop("transact_write_items")
        raise conflict

    proxy.around["transact_write_items"] = conflict_once
    retried = DynamoDBJournal(proxy, JOURNAL_TABLE)  # type: ignore[arg-type]

    assert retried.append(event(key="k")).seq == 1
    assert journal.head("lines") == 1


def test_botocore_retrying_our_own_successful_put_is_not_a_lost_race(
    aws: MotoAws, journal: DynamoDBJournal
) -> None:
    journal.append(event())
    proxy = Interposer(aws.dynamodb)

    def response_lost_then_retried(real: Any, **kwargs: Any) -> Any:
        real(**kwargs)  # stored, but the response never arrived
        return real(**kwargs)  # the retry finds the item: ours

    proxy.around["put_item"] = response_lost_then_retried
    appended = DynamoDBJournal(proxy, JOURNAL_TABLE).append(event(reason="once"))  # type: ignore[arg-type]

    assert appended.seq == 2
    assert journal.head("lines") == 2


# -- idempotency ----------------------------------------------------------------


def test_a_duplicate_key_costs_no_write_beyond_the_cancelled_transaction(
    journal: DynamoDBJournal, calls: CallLog
) -> None:
    first = journal.append(event(key="k"))
    calls.clear()

    again = journal.append(event(key="k", reason="retry"))

    assert again.duplicate and again.envelope == first.envelope
    assert calls.names() == ["Query", "TransactWriteItems", "GetItem"]


def test_a_duplicate_key_without_the_old_image_reads_the_key_item(
    aws: MotoAws, journal: DynamoDBJournal
) -> None:
    first = journal.append(event(key="k"))
    proxy = Interposer(aws.dynamodb)

    def strip_old_images(real: Any, **kwargs: Any) -> Any:
        try:
            return real(**kwargs)
        except Exception as error:
            for reason in getattr(error, "response", {}).get("CancellationReasons", []):
                reason.pop("Item", None)
            raise

    proxy.around["transact_write_items"] = strip_old_images
    again = DynamoDBJournal(proxy, JOURNAL_TABLE).append(event(key="k"))  # type: ignore[arg-type]

    assert again.duplicate and again.envelope == first.envelope


def test_key_items_and_the_registry_stay_out_of_collections(
    aws: MotoAws, journal: DynamoDBJournal
) -> None:
    journal.append_batch([event(key="a"), event(key="b")])
    journal.append(event("words", key="a"))

    items = aws.dynamodb.scan(TableName=JOURNAL_TABLE)["Items"]
    partitions = sorted({item[JOURNAL_PARTITION_KEY]["S"] for item in items})

    assert partitions == [
        "lines",
        "lines#key#a",
        "lines#key#b",
        "words",
        "words#key#a",
        layout.REGISTRY_PARTITION,
    ]
    assert journal.collections() == ["lines", "words"]
    assert [e.seq for e in journal.read("lines")] == [1, 2]


# -- limits ---------------------------------------------------------------------


def test_an_event_over_the_item_limit_is_refused_before_any_write(
    aws: MotoAws, clock: ManualClock, calls: CallLog
) -> None:
    journal = DynamoDBJournal(
        aws.dynamodb,
        JOURNAL_TABLE,
        clock=clock,
        max_event_bytes=layout.ITEM_LIMIT_BYTES,
    )
    # Passes the generic size check (NewEvent JSON + 200 <= limit) but its
    # stored item, which repeats the long key as an attribute, does not fit.
    too_big = sized_event(layout.ITEM_LIMIT_BYTES - 200, key="k" * 200)

    with pytest.raises(EventTooLarge) as caught:
        journal.append(too_big)

    assert caught.value.limit == layout.ITEM_LIMIT_BYTES
    assert caught.value.size > layout.ITEM_LIMIT_BYTES
    assert str(caught.value.size) in str(caught.value)
    assert not WRITES & set(calls.names())
    assert journal.head("lines") == 0


def test_an_event_just_under_the_item_limit_is_stored(
    aws: MotoAws, clock: ManualClock
) -> None:
    journal = DynamoDBJournal(
        aws.dynamodb,
        JOURNAL_TABLE,
        clock=clock,
        max_event_bytes=layout.ITEM_LIMIT_BYTES,
    )
    fits = sized_event(layout.ITEM_LIMIT_BYTES - 1_000)

    stored = journal.append(fits).envelope

    assert next(iter(journal.read("lines"))) == stored


def test_a_limit_above_dynamodbs_item_size_is_refused(aws: MotoAws) -> None:
    with pytest.raises(ValueError, match="item limit"):
        DynamoDBJournal(aws.dynamodb, JOURNAL_TABLE, max_event_bytes=500_000)


def test_a_batch_that_does_not_fit_one_transaction_is_refused_before_any_write(
    journal: DynamoDBJournal, calls: CallLog
) -> None:
    keyed = [event(key=str(i)) for i in range(51)]  # 102 actions

    with pytest.raises(BatchTooLarge) as caught:
        journal.append_batch(keyed)

    assert (caught.value.size, caught.value.limit) == (102, 100)
    assert calls.names() == []


def test_a_full_first_batch_registers_its_collection_ahead(
    journal: DynamoDBJournal,
) -> None:
    results = journal.append_batch([event(reason=str(i)) for i in range(100)])

    assert [result.seq for result in results] == list(range(1, 101))
    assert journal.collections() == ["lines"]


def test_a_collection_registered_ahead_is_not_listed_if_its_batch_failed(
    aws: MotoAws, clock: ManualClock
) -> None:
    proxy = Interposer(aws.dynamodb)
    proxy.around["transact_write_items"] = lambda real, **kwargs: (_ for _ in ()).throw(
        client_error("InternalServerError", "TransactWriteItems")
    )
    journal = DynamoDBJournal(proxy, JOURNAL_TABLE, clock=clock)  # type: ignore[arg-type]

    with pytest.raises(JournalUnavailable, match="InternalServerError"):
        journal.append_batch([event(reason=str(i)) for i in range(100)])

    assert journal.collections() == []
    proxy.around.clear()
    journal.append(event())
    assert journal.collections() == ["lines"]


# -- reading --------------------------------------------------------------------


def test_reads_are_strongly_consistent_and_follow_pages(
    journal: DynamoDBJournal, calls: CallLog
) -> None:
    # About 1.6 MB of events: more than one 1 MB Query page.
    for batch in range(4):
        journal.append_batch(
            [
                sized_event(100_000).model_copy(update={"event_id": f"e{batch}-{i}"})
                for i in range(4)
            ]
        )
    calls.clear()

    envelopes = list(journal.read("lines", after=1))

    assert [e.seq for e in envelopes] == list(range(2, 17))
    queries = [params for name, params in calls.calls if name == "Query"]
    assert len(queries) >= 2
    assert all(params["ConsistentRead"] for params in queries)
    assert "ExclusiveStartKey" in queries[1]


def test_head_reads_only_the_newest_item_consistently(
    journal: DynamoDBJournal, calls: CallLog
) -> None:
    journal.append_batch([event(), event(), event()])
    calls.clear()

    assert journal.head("lines") == 3

    ((name, params),) = calls.calls
    assert name == "Query"
    assert params["ConsistentRead"] is True
    assert params["ScanIndexForward"] is False
    assert params["Limit"] == 1


def test_an_unreachable_table_is_reported_as_journal_unavailable(
    aws: MotoAws,
) -> None:
    journal = DynamoDBJournal(aws.dynamodb, "no-such-table")

    with pytest.raises(JournalUnavailable, match="no-such-table"):
        journal.head("lines")


def test_events_are_stored_with_routing_attributes(
    aws: MotoAws, journal: DynamoDBJournal
) -> None:
    stored = journal.append(event(key="k")).envelope

    item = aws.dynamodb.get_item(
        TableName=JOURNAL_TABLE,
        Key={JOURNAL_PARTITION_KEY: {"S": "lines"}, JOURNAL_SORT_KEY: {"N": "1"}},
    )["Item"]

    assert item["event_id"] == {"S": stored.event_id}
    assert item["type"] == {"S": "snapshot_request"}
    assert item["idempotency_key"] == {"S": "k"}
    assert item["recorded_at"] == {"S": "2026-03-01T12:00:00.250000"}
