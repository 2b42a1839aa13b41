"""Applying a sequence of events with retries: the one path the consumer and
replay share, so that a rebuild reaches the live consumer's digest.

Each event is tried up to ``attempts`` times with exponential backoff;
errors no retry can cure (a delta whose sha256 does not match, an unsafe
archive, a collection with other settings) fail at once. An event that
still fails raises :class:`~pipeline.errors.EventApplyError` naming its seq.

Consecutive label updates, and consecutive metadata updates, are applied
together (see :func:`pipeline.apply.apply_label_run` and
:func:`pipeline.apply.apply_metadata_run`); a run that fails is applied
again event by event, so that retries and the error concern the failing
event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from journal.errors import DeltaIntegrityError, UnsafeArchiveError
from journal.events import Envelope
from pipeline.apply import (
    ApplyContext,
    ApplyResult,
    apply_event,
    apply_label_run,
    apply_metadata_run,
)
from pipeline.chroma import PAGE_SIZE, ChromaCollection
from pipeline.errors import CollectionConfigMismatch, EventApplyError

log = structlog.get_logger(__name__)

#: Most label or metadata updates applied together.
UPDATE_RUN_MAX = PAGE_SIZE
#: Kinds applied as runs of consecutive events.
RUN_KINDS = frozenset({"label_update", "metadata_update"})
#: Errors that retrying the same event cannot cure.
PERMANENT_ERRORS = (DeltaIntegrityError, UnsafeArchiveError, CollectionConfigMismatch)


class EventApplier:
    """Applies events in seq order to an open collection, with retries."""

    def __init__(
        self,
        *,
        attempts: int = 3,
        wait_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._attempts = attempts
        self._wait_seconds = wait_seconds
        self._sleep = sleep

    def apply(
        self,
        collection: ChromaCollection,
        events: Sequence[Envelope],
        context: ApplyContext,
    ) -> Iterator[tuple[Envelope, ApplyResult]]:
        """Apply ``events`` in order, yielding each event once it is applied
        (with the result of its run, counted once per run)."""
        for run in update_runs(events):
            result = self._apply_run(collection, run, context)
            for index, envelope in enumerate(run):
                yield envelope, result if index == 0 else ApplyResult()

    def _apply_run(
        self,
        collection: ChromaCollection,
        run: Sequence[Envelope],
        context: ApplyContext,
    ) -> ApplyResult:
        if len(run) == 1:
            return self.apply_one(collection, run[0], context)
        try:
            if run[0].payload.type == "label_update":
                return apply_label_run(collection, run, context.known, context.receipts)
            return apply_metadata_run(collection, run, context.receipts)
        except Exception as error:
            log.warning(
                "update_run_failed",
                collection=run[0].collection,
                first_seq=run[0].seq,
                last_seq=run[-1].seq,
                error=f"{type(error).__name__}: {error}",
            )
        result = ApplyResult()
        for envelope in run:
            result.merge(self.apply_one(collection, envelope, context))
        return result

    def apply_one(
        self, collection: ChromaCollection, envelope: Envelope, context: ApplyContext
    ) -> ApplyResult:
        """Apply one event with retries; :class:`EventApplyError` when it
        still fails."""
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._wait_seconds, max=10),
            retry=retry_if_exception(
                lambda error: not isinstance(error, PERMANENT_ERRORS)
            ),
            before_sleep=_log_retry(envelope),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return apply_event(collection, envelope, context)
        except Exception as error:
            cause = f"{type(error).__name__}: {error}"
            raise EventApplyError(envelope.collection, envelope.seq, cause) from error
        raise AssertionError("unreachable: tenacity re-raises the last error")


def update_runs(events: Sequence[Envelope]) -> Iterator[list[Envelope]]:
    """The events in order: consecutive events of one run kind (label or
    metadata updates, up to :data:`UPDATE_RUN_MAX`) together, every other
    event alone."""
    run: list[Envelope] = []
    for envelope in events:
        kind = envelope.payload.type
        joins = kind in RUN_KINDS
        if run and (
            not joins or kind != run[0].payload.type or len(run) >= UPDATE_RUN_MAX
        ):
            yield run
            run = []
        if joins:
            run.append(envelope)
        else:
            yield [envelope]
    if run:
        yield run


def _log_retry(envelope: Envelope) -> Callable[[RetryCallState], None]:
    def log_it(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "apply_retry",
            collection=envelope.collection,
            seq=envelope.seq,
            attempt=state.attempt_number,
            error=f"{type(error).__name__}: {error}",
        )

    return log_it
