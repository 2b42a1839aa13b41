"""Scheduled snapshot requests (a Lambda function for EventBridge Scheduler).

Every N minutes the schedule invokes :func:`handler` with its input, e.g.
``{"collections": ["lines", "words"], "scheduled_time": "..."}``, and the
handler appends one ``snapshot_request`` per collection. A request when
nothing changed since the last snapshot costs one journal event and
produces no snapshot (the consumer coalesces it).

Retries must append nothing twice: the schedule's retry policy and Lambda's
own retries of an asynchronous invocation deliver the same input again. The
idempotency key is therefore derived from the scheduled time, which every
attempt of one occurrence shares. EventBridge Scheduler fills it in when
the schedule's input holds the context attribute
``<aws.scheduler.scheduled-time>`` (EventBridge Scheduler user guide,
"Adding context attributes"); the ``time`` field of an EventBridge rule
event is accepted too. Without either, the Lambda request id is used,
which Lambda keeps across its own retries but not across the schedule's,
and a warning is logged.

This module must not import chromadb (the Lambda package does not ship it).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from journal.aws_schema import SNAPSHOT_SCHEDULE_COLLECTIONS_KEY
from journal.base import Journal
from journal.events import NewEvent, SnapshotRequest, validate_collection_name

log = structlog.get_logger(__name__)

PRODUCER = "snapshot-schedule"
#: Input key for the schedule's occurrence time (see the module docstring).
SCHEDULED_TIME_KEY = "scheduled_time"
#: The field an EventBridge rule event carries its time in.
RULE_TIME_KEY = "time"


class ScheduleInputError(ValueError):
    """The scheduled event's input is malformed (the invocation fails, so
    the schedule's dead-letter queue and alarm see it)."""


def request_snapshots(
    journal: Journal, event: Mapping[str, Any], *, request_id: str | None = None
) -> dict[str, Any]:
    """Append one ``snapshot_request`` per collection the input names.

    Returns, per collection, the seq and whether it was a duplicate of an
    earlier attempt.
    """
    collections = _collections(event)
    occurrence = _occurrence(event, request_id)
    reason = f"scheduled {occurrence}" if occurrence else "scheduled"
    appended: dict[str, Any] = {}
    for collection in collections:
        result = journal.append(
            NewEvent(
                collection=collection,
                payload=SnapshotRequest(reason=reason),
                idempotency_key=f"{PRODUCER}:{occurrence}" if occurrence else None,
                producer=PRODUCER,
            )
        )
        appended[collection] = {"seq": result.seq, "duplicate": result.duplicate}
    log.info("snapshot_requests_appended", occurrence=occurrence, requests=appended)
    return {"occurrence": occurrence, "requests": appended}


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point (``journal.scheduled.handler``)."""
    request_id = getattr(context, "aws_request_id", None)
    return request_snapshots(
        _journal_from_environment(),
        event,
        request_id=request_id if isinstance(request_id, str) else None,
    )


@functools.cache
def _journal_from_environment() -> Journal:
    """Built once per Lambda container from the environment, then reused."""
    from chroma_journal.logs import configure_logging
    from chroma_journal.settings import Settings
    from chroma_journal.wiring import open_journal

    settings = Settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    return open_journal(settings)


def _collections(event: Mapping[str, Any]) -> list[str]:
    names = event.get(SNAPSHOT_SCHEDULE_COLLECTIONS_KEY)
    if not isinstance(names, list) or not names:
        raise ScheduleInputError(
            f"the scheduled input needs {SNAPSHOT_SCHEDULE_COLLECTIONS_KEY!r}: "
            f"a non-empty list of collection names, got {names!r}"
        )
    try:
        return list(dict.fromkeys(validate_collection_name(n) for n in names))
    except ValueError as error:
        raise ScheduleInputError(str(error)) from error


def _occurrence(event: Mapping[str, Any], request_id: str | None) -> str | None:
    """A name shared by every attempt of one scheduled occurrence."""
    for key in (SCHEDULED_TIME_KEY, RULE_TIME_KEY):
        value = event.get(key)
        if isinstance(value, str) and value:
            return _utc_seconds(value, key)
    log.warning(
        "snapshot_schedule_without_time",
        expected=SCHEDULED_TIME_KEY,
        fallback="lambda request id" if request_id else "none",
    )
    return f"request-{request_id}" if request_id else None


def _utc_seconds(value: str, key: str) -> str:
    """``value`` as UTC to the second, so that spellings of one instant
    (``Z`` or ``+00:00``, with or without fractions) give one key."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise ScheduleInputError(f"{key}={value!r} is not an ISO 8601 time") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
