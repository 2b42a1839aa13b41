"""The journal contract every backend implements.

The journal is the source of truth: a collection's content is a pure function
of the snapshot it started from and the journal events it applied. A backend
keeps, per collection, a gapless sequence ``1, 2, 3, ...``; idempotency keys
are scoped to a collection.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from journal.errors import EventTooLarge, JournalError, UnreadableEvent
from journal.events import Envelope, NewEvent

Clock = Callable[[], datetime]

#: Largest envelope a backend stores; DynamoDB's item limit is 400 KB and an
#: item also holds attribute names and the idempotency key, so stay below it.
DEFAULT_MAX_EVENT_BYTES = 350_000


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


def decode_stored(collection: str, seq: int, data: str | bytes) -> Envelope:
    """The envelope stored in the row ``(collection, seq)``.

    Raises :class:`UnreadableEvent` when the bytes do not decode (corrupt,
    an unknown kind, a schema version from the future) or hold another
    row's event, so that a reader can stop exactly at that seq.
    """
    try:
        envelope = Envelope.from_json(data)
    except ValueError as error:  # JSON, validation and upcast errors
        cause = f"{type(error).__name__}: {error}"
        raise UnreadableEvent(collection, seq, cause) from error
    if (envelope.collection, envelope.seq) != (collection, seq):
        raise UnreadableEvent(
            collection,
            seq,
            f"the row holds {envelope.collection} seq {envelope.seq}",
        )
    return envelope


@dataclass(frozen=True)
class AppendResult:
    """The outcome of appending one event.

    ``duplicate`` is true when the idempotency key had been appended before;
    ``envelope`` is then the event stored the first time, and nothing new was
    written.
    """

    envelope: Envelope
    duplicate: bool

    @property
    def seq(self) -> int:
        """The event's sequence number in its collection."""
        return self.envelope.seq


class Publisher(abc.ABC):
    """Sends stored envelopes on to a stream after they were appended."""

    @abc.abstractmethod
    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish; must not raise for delivery failures (they are recovered
        by the consumer's gap fill), only log and count them."""


class Journal(abc.ABC):
    """Append-only, per-collection numbered event log."""

    def __init__(
        self,
        *,
        clock: Clock = utc_now,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        publisher: Publisher | None = None,
    ) -> None:
        self._clock = clock
        self._max_event_bytes = max_event_bytes
        self._publisher = publisher

    def append(self, event: NewEvent) -> AppendResult:
        """Append one event; see :meth:`append_batch`."""
        return self.append_batch([event])[0]

    def append_batch(self, events: Sequence[NewEvent]) -> list[AppendResult]:
        """Append events of one collection atomically, in order.

        Either every new event is stored with consecutive ``seq`` numbers or
        none is. Events whose idempotency key was seen before are returned as
        duplicates and not written again. New events are then published.
        """
        if not events:
            return []
        collection = self._single_collection(events)
        for event in events:
            self._check_size(event)
        results = self._append_batch(collection, events)
        fresh = [result.envelope for result in results if not result.duplicate]
        if fresh and self._publisher is not None:
            self._publisher.publish(fresh)
        return results

    @abc.abstractmethod
    def _append_batch(
        self, collection: str, events: Sequence[NewEvent]
    ) -> list[AppendResult]:
        """Backend step: store the batch atomically."""

    @abc.abstractmethod
    def read(
        self, collection: str, after: int = 0, upto: int | None = None
    ) -> Iterator[Envelope]:
        """Events with ``after < seq <= upto`` (no upper bound when None),
        in ``seq`` order."""

    @abc.abstractmethod
    def head(self, collection: str) -> int:
        """The highest ``seq`` of the collection, 0 when it has no events."""

    @abc.abstractmethod
    def collections(self) -> list[str]:
        """Every collection with at least one event, sorted."""

    def last_seq_at(self, collection: str, at: datetime) -> int:
        """The highest ``seq`` recorded at or before ``at``, 0 when none.

        Replay uses it to turn a time into a target ``seq``. A naive
        datetime is taken to be UTC. This generic version reads the whole
        collection; backends override it with an indexed query.
        """

        def utc(moment: datetime) -> datetime:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

        limit = utc(at)
        return max(
            (
                envelope.seq
                for envelope in self.read(collection)
                if utc(envelope.recorded_at) <= limit
            ),
            default=0,
        )

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default holds none."""

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _stamp(self, event: NewEvent, seq: int) -> Envelope:
        """The envelope stored for ``event`` at ``seq``."""
        return Envelope(
            collection=event.collection,
            seq=seq,
            event_id=event.event_id,
            idempotency_key=event.idempotency_key,
            recorded_at=self._clock(),
            producer=event.producer,
            payload=event.payload,
        )

    def _check_size(self, event: NewEvent) -> None:
        size = len(event.model_dump_json().encode()) + 200  # envelope fields
        if size > self._max_event_bytes:
            raise EventTooLarge(event.collection, size, self._max_event_bytes)

    @staticmethod
    def _single_collection(events: Sequence[NewEvent]) -> str:
        names = {event.collection for event in events}
        if len(names) != 1:
            raise JournalError(
                f"a batch append takes events of one collection, got {sorted(names)}"
            )
        return names.pop()
