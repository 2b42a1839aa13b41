"""Kinesis: publishing appended events, and reading them back safely.

Producer side, :class:`KinesisPublisher` sends each stored envelope with
``PutRecords`` (partition key = collection, so one collection stays on one
shard). Publishing happens after the append is durable; when it finally
fails the event is still in the journal, and the consumer recovers it.

Consumer side (DESIGN section 5), Kinesis delivers at least once and, after a
failed publish, not at all; the consumer trusts only ``seq``.
:func:`decode_record` turns a record into an envelope (a bad record is
logged and skipped, never fatal) and :class:`GapFiller` turns what arrived
into the exact run of events to apply next, reading what is missing from the
journal::

    applied 5 │ stream delivers 5 8 9 8 12
              ▼
    drop ≤ 5, dedupe → 8 9 12 ; read 6..7 and 10..11 from the journal
              ▼
    apply 6 7 8 9 10 11 12   (stops before any seq the journal lacks)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from journal.base import Journal, Publisher
from journal.events import Envelope

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_kinesis.type_defs import PutRecordsRequestEntryTypeDef

log = structlog.get_logger(__name__)

#: PutRecords takes at most 500 records and 5 MiB per call (Kinesis API
#: reference, PutRecords); the byte bound here leaves room for keys.
MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5_000_000
DEFAULT_PUBLISH_ATTEMPTS = 5

#: Called with (collection, number of envelopes).
CountHook = Callable[[str, int], None]


class _Undelivered(Exception):
    """Some entries of a PutRecords call failed (retried by tenacity)."""


class KinesisPublisher(Publisher):
    """Publishes envelopes to a Kinesis stream; never raises for delivery.

    Entries that ``PutRecords`` reports as failed are sent again, alone,
    with jittered backoff; whole-call errors were already retried by
    botocore. Retried entries can land after later ones: the consumer
    orders by ``seq``, not by stream position.
    """

    def __init__(
        self,
        client: KinesisClient,
        stream_name: str,
        *,
        max_attempts: int = DEFAULT_PUBLISH_ATTEMPTS,
        on_published: CountHook | None = None,
        on_failed: CountHook | None = None,
    ) -> None:
        self._client = client
        self._stream = stream_name
        self._max_attempts = max_attempts
        self._on_published = on_published
        self._on_failed = on_failed
        self.published_count = 0
        self.failed_count = 0

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Send ``envelopes``; failures are logged and counted, not raised."""
        for chunk in _chunks(envelopes):
            self._deliver(chunk)

    def _deliver(self, envelopes: list[Envelope]) -> None:
        pending = envelopes

        def send() -> None:
            nonlocal pending
            pending = self._put_records(pending)
            if pending:
                raise _Undelivered

        retrying = Retrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=wait_random_exponential(multiplier=0.05, max=2.0),
            retry=retry_if_exception_type(_Undelivered),
            reraise=True,
        )
        try:
            retrying(send)
        except _Undelivered:
            self._give_up(pending, "entries kept failing")
        except (ClientError, BotoCoreError) as error:
            self._give_up(pending, str(error))
        self._count_published(envelopes, pending)

    def _put_records(self, envelopes: list[Envelope]) -> list[Envelope]:
        """One PutRecords call; returns the envelopes whose entries failed."""
        response = self._client.put_records(
            StreamName=self._stream, Records=[_entry(e) for e in envelopes]
        )
        if not response.get("FailedRecordCount"):
            return []
        failed = [
            (envelope, outcome)
            for envelope, outcome in zip(envelopes, response["Records"], strict=True)
            if outcome.get("ErrorCode")
        ]
        log.debug(
            "publish_entries_failed",
            seqs=[envelope.seq for envelope, _ in failed],
            errors=sorted({str(outcome["ErrorCode"]) for _, outcome in failed}),
        )
        return [envelope for envelope, _ in failed]

    def _give_up(self, envelopes: list[Envelope], reason: str) -> None:
        for collection, seqs in _seqs_by_collection(envelopes).items():
            # WARNING, not ERROR: the events are durable, and the consumer's
            # gap fill or idle head poll applies them anyway.
            log.warning(
                "publish_failed",
                collection=collection,
                seqs=seqs,
                stream=self._stream,
                reason=reason,
            )
            self.failed_count += len(seqs)
            if self._on_failed is not None:
                self._on_failed(collection, len(seqs))

    def _count_published(
        self, envelopes: list[Envelope], undelivered: list[Envelope]
    ) -> None:
        lost = {id(envelope) for envelope in undelivered}
        delivered = [envelope for envelope in envelopes if id(envelope) not in lost]
        for collection, seqs in _seqs_by_collection(delivered).items():
            self.published_count += len(seqs)
            if self._on_published is not None:
                self._on_published(collection, len(seqs))


def _entry(envelope: Envelope) -> PutRecordsRequestEntryTypeDef:
    return {"Data": envelope.to_json().encode(), "PartitionKey": envelope.collection}


def _chunks(envelopes: Sequence[Envelope]) -> Iterable[list[Envelope]]:
    """Groups that fit one PutRecords call, in order."""
    chunk: list[Envelope] = []
    size = 0
    for envelope in envelopes:
        entry_size = len(envelope.to_json().encode()) + len(envelope.collection)
        full = len(chunk) == MAX_RECORDS_PER_CALL
        if chunk and (full or size + entry_size > MAX_BYTES_PER_CALL):
            yield chunk
            chunk, size = [], 0
        chunk.append(envelope)
        size += entry_size
    if chunk:
        yield chunk


def _seqs_by_collection(envelopes: Iterable[Envelope]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for envelope in envelopes:
        grouped.setdefault(envelope.collection, []).append(envelope.seq)
    return grouped


# -- consumer side ------------------------------------------------------------


def decode_record(
    data: bytes, *, shard_id: str, sequence_number: str
) -> Envelope | None:
    """The envelope in a Kinesis record, or None for a record that is not one.

    A bad record is logged with where it sits on the stream and skipped,
    never raised: if it did carry a journal event, the gap it leaves is
    filled from the journal by :class:`GapFiller`, where a payload that
    cannot be read is the consumer's to park, with its seq.
    """
    try:
        return Envelope.from_json(data)
    except (ValidationError, ValueError) as error:
        log.warning(
            "bad_record",
            shard_id=shard_id,
            sequence_number=sequence_number,
            size=len(data),
            error=str(error).splitlines()[0],
        )
        return None


class GapFiller:
    """Turns delivered envelopes into the next consecutive run to apply."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def events_to_apply(
        self, collection: str, applied_seq: int, decoded: Sequence[Envelope]
    ) -> list[Envelope]:
        """Events ``applied_seq + 1 ...`` up to the highest seq delivered.

        Envelopes already applied, of another collection, or repeated are
        dropped; seqs that were not delivered are read from the journal. The
        run stops before the first seq the journal does not have either.
        """
        wanted = _fresh(collection, applied_seq, decoded)
        if not wanted:
            return []
        for after, upto in _missing_ranges(applied_seq, wanted):
            filled = list(self._journal.read(collection, after=after, upto=upto))
            log.warning(
                "gap_filled",
                collection=collection,
                after=after,
                upto=upto,
                read=len(filled),
            )
            for envelope in filled:
                wanted.setdefault(envelope.seq, envelope)
        return _consecutive(collection, applied_seq, wanted, max(wanted))

    def catch_up_range(
        self, collection: str, applied_seq: int, *, limit: int | None = None
    ) -> list[Envelope]:
        """Every event after ``applied_seq`` up to the journal's head (at most
        ``limit``), for polling a collection whose stream is quiet."""
        head = self._journal.head(collection)
        if limit is not None:
            head = min(head, applied_seq + limit)
        if head <= applied_seq:
            return []
        read = self._journal.read(collection, after=applied_seq, upto=head)
        return _consecutive(collection, applied_seq, {e.seq: e for e in read}, head)


def _fresh(
    collection: str, applied_seq: int, decoded: Iterable[Envelope]
) -> dict[int, Envelope]:
    fresh: dict[int, Envelope] = {}
    for envelope in decoded:
        if envelope.collection == collection and envelope.seq > applied_seq:
            fresh.setdefault(envelope.seq, envelope)
    return fresh


def _missing_ranges(applied_seq: int, present: dict[int, Any]) -> list[tuple[int, int]]:
    """``(after, upto]`` ranges between ``applied_seq`` and the highest
    present seq that hold no present seq."""
    ranges = []
    previous = applied_seq
    for seq in sorted(present):
        if seq > previous + 1:
            ranges.append((previous, seq - 1))
        previous = seq
    return ranges


def _consecutive(
    collection: str, applied_seq: int, by_seq: dict[int, Envelope], top: int
) -> list[Envelope]:
    """``applied_seq + 1, + 2, ...`` while present, up to ``top``."""
    run: list[Envelope] = []
    seq = applied_seq + 1
    while seq <= top and seq in by_seq:
        run.append(by_seq[seq])
        seq += 1
    if seq <= top:
        # Never advance past a seq the journal lacks (DESIGN section 5).
        log.warning("journal_gap", collection=collection, missing_seq=seq)
    return run
