"""Consumer side: decoding records and filling gaps from the journal."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from journal.dynamodb import DynamoDBJournal
from journal.events import Envelope
from journal.kinesis import GapFiller, KinesisPublisher, decode_record
from tests.aws.moto_backends import JOURNAL_TABLE, MotoAws
from tests.aws.support import Interposer, ManualClock, event


def seqs(envelopes: list[Envelope]) -> list[int]:
    return [envelope.seq for envelope in envelopes]


def filled_journal(journal: DynamoDBJournal, count: int) -> list[Envelope]:
    return [
        r.envelope
        for r in journal.append_batch([event(reason=str(i)) for i in range(count)])
    ]


# -- decoding -----------------------------------------------------------------


def test_a_record_decodes_to_its_envelope(journal: DynamoDBJournal) -> None:
    (stored,) = filled_journal(journal, 1)

    decoded = decode_record(
        stored.to_json().encode(), shard_id="s", sequence_number="1"
    )

    assert decoded == stored


def test_a_bad_record_is_logged_with_its_position_and_skipped() -> None:
    with capture_logs() as logs:
        decoded = decode_record(
            b'{"not": "an envelope"}', shard_id="shardId-000", sequence_number="4955"
        )
        garbage = decode_record(
            b"\xff\xfe", shard_id="shardId-001", sequence_number="7"
        )

    assert decoded is None and garbage is None
    assert [
        (log["event"], log["shard_id"], log["sequence_number"]) for log in logs
    ] == [
        ("bad_record", "shardId-000", "4955"),
        ("bad_record", "shardId-001", "7"),
    ]
    assert all(log["log_level"] == "warning" for log in logs)


# -- gap fill -------------------------------------------------------------------


def test_applied_and_repeated_events_are_dropped_and_the_rest_sorted(
    journal: DynamoDBJournal,
) -> None:
    stored = filled_journal(journal, 6)
    delivered = [stored[5], stored[3], stored[1], stored[4], stored[3]]

    run = GapFiller(journal).events_to_apply("lines", 3, delivered)

    assert run == stored[3:6]


def test_missing_seqs_are_read_from_the_journal(journal: DynamoDBJournal) -> None:
    stored = filled_journal(journal, 12)
    delivered = [stored[4], stored[7], stored[8], stored[7], stored[11]]  # 5, 8, 9, 12

    run = GapFiller(journal).events_to_apply("lines", 3, delivered)

    assert seqs(run) == list(range(4, 13))
    assert run == stored[3:12]


def test_the_run_stops_before_a_seq_the_journal_lacks(journal: DynamoDBJournal) -> None:
    stored = filled_journal(journal, 2)
    # A record from elsewhere claims seq 5 of this collection.
    stray = stored[1].model_copy(update={"seq": 5})

    with capture_logs() as logs:
        run = GapFiller(journal).events_to_apply("lines", 0, [stray])

    assert seqs(run) == [1, 2]
    assert {"event": "journal_gap", "collection": "lines", "missing_seq": 3} in [
        {k: log[k] for k in ("event", "collection", "missing_seq") if k in log}
        for log in logs
    ]


def test_other_collections_and_nothing_new_give_an_empty_run(
    journal: DynamoDBJournal,
) -> None:
    (line,) = filled_journal(journal, 1)
    word = journal.append(event("words")).envelope
    filler = GapFiller(journal)

    assert filler.events_to_apply("lines", 1, [line, word]) == []
    assert filler.events_to_apply("lines", 0, []) == []


def test_catch_up_reads_everything_up_to_the_head(journal: DynamoDBJournal) -> None:
    stored = filled_journal(journal, 7)
    filler = GapFiller(journal)

    assert filler.catch_up_range("lines", 2) == stored[2:]
    assert filler.catch_up_range("lines", 2, limit=3) == stored[2:5]
    assert filler.catch_up_range("lines", 7) == []
    assert filler.catch_up_range("receipts", 0) == []


# -- end to end -------------------------------------------------------------------


class StreamReader:
    """Reads a one-shard stream from the start, like a KCL record processor."""

    def __init__(self, aws: MotoAws, stream: str) -> None:
        self._kinesis = aws.kinesis
        shard = aws.kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
        self.shard = shard
        self._iterator = aws.kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]

    def poll(self) -> list[Envelope]:
        page = self._kinesis.get_records(ShardIterator=self._iterator, Limit=7)
        self._iterator = page["NextShardIterator"]
        decoded = [
            decode_record(
                r["Data"], shard_id=self.shard, sequence_number=r["SequenceNumber"]
            )
            for r in page["Records"]
        ]
        return [envelope for envelope in decoded if envelope is not None]


def test_a_consumer_sees_every_event_once_in_order_despite_lost_publishes(
    aws: MotoAws, clock: ManualClock
) -> None:
    stream = aws.create_stream()
    proxy = Interposer(aws.kinesis)
    lost: list[int] = []

    def lose_every_third(real: Any, **kwargs: Any) -> Any:
        seq = Envelope.from_json(kwargs["Records"][0]["Data"]).seq
        if seq % 3 == 0 or seq > 40:  # the last ones only reach the idle poll
            lost.append(seq)
            return {
                "FailedRecordCount": 1,
                "Records": [{"ErrorCode": "InternalFailure"}],
            }
        return real(**kwargs)

    proxy.around["put_records"] = lose_every_third
    publisher = KinesisPublisher(proxy, stream, max_attempts=1)  # type: ignore[arg-type]
    journal = DynamoDBJournal(
        aws.dynamodb, JOURNAL_TABLE, clock=clock, publisher=publisher
    )
    for i in range(45):
        journal.append(event(reason=str(i)))
    reader = StreamReader(aws, stream)
    filler = GapFiller(journal)

    applied: list[Envelope] = []
    applied_seq = 0
    for _ in range(100):
        delivered = reader.poll()
        run = filler.events_to_apply("lines", applied_seq, delivered)
        if not delivered:  # the stream is quiet: poll the journal's head
            run = filler.catch_up_range("lines", applied_seq, limit=4)
        applied.extend(run)
        applied_seq = applied[-1].seq if applied else 0

    assert lost and publisher.failed_count == len(lost)
    assert seqs(applied) == list(range(1, 46))
    assert applied == list(journal.read("lines"))
