"""Publishing envelopes to Kinesis (moto), including partial failures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from structlog.testing import capture_logs

from journal.dynamodb import DynamoDBJournal
from journal.events import Envelope, SnapshotRequest
from journal.kinesis import KinesisPublisher
from tests.aws.moto_backends import JOURNAL_TABLE, MotoAws
from tests.aws.support import CallLog, Interposer, ManualClock, event


def envelopes(count: int, collection: str = "lines", start: int = 1) -> list[Envelope]:
    return [
        Envelope(
            collection=collection,
            seq=seq,
            event_id=f"e{seq}",
            recorded_at=datetime(2026, 3, 1, tzinfo=UTC),
            producer="tests",
            payload=SnapshotRequest(reason=str(seq)),
        )
        for seq in range(start, start + count)
    ]


def stream_records(aws: MotoAws, stream: str) -> list[dict[str, Any]]:
    """Every record on the stream's shards, in shard order."""
    records: list[dict[str, Any]] = []
    for shard in aws.kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = aws.kinesis.get_shard_iterator(
            StreamName=stream,
            ShardId=shard["ShardId"],
            ShardIteratorType="TRIM_HORIZON",
        )["ShardIterator"]
        while True:
            page = aws.kinesis.get_records(ShardIterator=iterator)
            records.extend(page["Records"])
            if not page["Records"]:
                break
            iterator = page["NextShardIterator"]
    return records


def failing_entries(
    proxy: Interposer, fail: set[int], times: int | None = None
) -> list[list[int]]:
    """Make PutRecords report entries with seq in ``fail`` as throttled
    (``times`` calls, or always); returns the seqs sent per call."""
    sent: list[list[int]] = []
    remaining = [times]

    def put_records(real: Any, **kwargs: Any) -> Any:
        batch = [Envelope.from_json(entry["Data"]) for entry in kwargs["Records"]]
        sent.append([envelope.seq for envelope in batch])
        failing = remaining[0] is None or remaining[0] > 0
        if remaining[0] is not None:
            remaining[0] -= 1
        keep = [
            e
            for e, b in zip(kwargs["Records"], batch, strict=True)
            if not (failing and b.seq in fail)
        ]
        response = real(**{**kwargs, "Records": keep}) if keep else {"Records": []}
        delivered = iter(response["Records"])
        outcomes = []
        for envelope in batch:
            if failing and envelope.seq in fail:
                outcomes.append(
                    {
                        "ErrorCode": "ProvisionedThroughputExceededException",
                        "ErrorMessage": "Rate exceeded for shard",
                    }
                )
            else:
                outcomes.append(next(delivered))
        failed = sum(1 for outcome in outcomes if "ErrorCode" in outcome)
        return {"FailedRecordCount": failed, "Records": outcomes}

    proxy.around["put_records"] = put_records
    return sent


def test_each_envelope_becomes_one_record_keyed_by_its_collection(aws: MotoAws) -> None:
    stream = aws.create_stream()
    publisher = KinesisPublisher(aws.kinesis, stream)
    sent = envelopes(3) + envelopes(2, collection="words")

    publisher.publish(sent)

    records = stream_records(aws, stream)
    assert [Envelope.from_json(r["Data"]) for r in records] == sent
    assert [r["PartitionKey"] for r in records] == ["lines"] * 3 + ["words"] * 2
    assert publisher.published_count == 5
    assert publisher.failed_count == 0


def test_only_the_failed_entries_are_sent_again(aws: MotoAws) -> None:
    stream = aws.create_stream()
    proxy = Interposer(aws.kinesis)
    sent = failing_entries(proxy, fail={2, 4}, times=1)
    publisher = KinesisPublisher(proxy, stream)  # type: ignore[arg-type]

    publisher.publish(envelopes(5))

    assert sent == [[1, 2, 3, 4, 5], [2, 4]]
    seqs = [Envelope.from_json(r["Data"]).seq for r in stream_records(aws, stream)]
    assert sorted(seqs) == [1, 2, 3, 4, 5]
    assert publisher.failed_count == 0


def test_entries_that_keep_failing_are_logged_and_counted_not_raised(
    aws: MotoAws,
) -> None:
    stream = aws.create_stream()
    proxy = Interposer(aws.kinesis)
    sent = failing_entries(proxy, fail={2})
    counted: list[tuple[str, int]] = []
    publisher = KinesisPublisher(
        proxy,  # type: ignore[arg-type]
        stream,
        max_attempts=3,
        on_failed=lambda collection, count: counted.append((collection, count)),
    )

    with capture_logs() as logs:
        publisher.publish(envelopes(3))

    assert sent == [[1, 2, 3], [2], [2]]
    assert publisher.failed_count == 1
    assert publisher.published_count == 2
    assert counted == [("lines", 1)]
    (failure,) = [log for log in logs if log["event"] == "publish_failed"]
    assert failure["collection"] == "lines"
    assert failure["seqs"] == [2]
    assert failure["log_level"] == "warning"


def test_a_whole_call_failure_is_counted_not_raised(aws: MotoAws) -> None:
    publisher = KinesisPublisher(aws.kinesis, "no-such-stream")

    with capture_logs() as logs:
        publisher.publish(envelopes(2))

    assert publisher.failed_count == 2
    assert "ResourceNotFoundException" in logs[0]["reason"]


def test_large_publishes_are_split_into_calls_of_at_most_500_records(
    aws: MotoAws, calls: CallLog
) -> None:
    stream = aws.create_stream()
    calls.clear()

    KinesisPublisher(aws.kinesis, stream).publish(envelopes(1_200))

    sizes = [
        len(params["Records"]) for name, params in calls.calls if name == "PutRecords"
    ]
    assert sizes == [500, 500, 200]


def test_an_append_survives_a_failed_publish(aws: MotoAws, clock: ManualClock) -> None:
    publisher = KinesisPublisher(aws.kinesis, "no-such-stream", max_attempts=1)
    journal = DynamoDBJournal(
        aws.dynamodb, JOURNAL_TABLE, clock=clock, publisher=publisher
    )

    result = journal.append(event())

    assert result.seq == 1
    assert journal.head("lines") == 1
    assert publisher.failed_count == 1
