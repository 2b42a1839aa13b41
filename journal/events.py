"""The event model: one envelope, a discriminated union of typed payloads.

Producers build a :class:`NewEvent`; the journal assigns ``seq`` and
``recorded_at`` and stores an :class:`Envelope`. Every payload carries a
``schema_version`` so that a reader can upcast events written by older code
(see :mod:`journal.upcast`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
    field_validator,
    model_validator,
)
from ulid import ULID

from journal.errors import InvalidCollectionName

COLLECTION_RULE = (
    "3-63 characters from letters, digits, '-' and '_', starting and ending "
    "with a letter or digit (ChromaDB's own rule for the ends)"
)
_COLLECTION_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{1,61})[A-Za-z0-9]")


def validate_collection_name(name: object) -> str:
    """Return ``name`` when it is a valid collection name, else raise.

    The name becomes a directory, an object key prefix and a ChromaDB
    collection name, so it may hold no path characters at all.
    """
    if not isinstance(name, str) or not _COLLECTION_RE.fullmatch(name):
        raise InvalidCollectionName(name, COLLECTION_RULE)
    return name


def _collection_name(value: str) -> str:
    try:
        return validate_collection_name(value)
    except InvalidCollectionName as error:
        # pydantic reports ValueErrors with the field's location attached.
        raise ValueError(str(error)) from error


CollectionName = Annotated[str, AfterValidator(_collection_name)]
ImageId = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z-]{1,64}$")]
PositiveId = Annotated[int, Field(ge=1, le=99999)]
Label = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")]
MetadataKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Scalar = str | int | float | bool

#: Metadata keys that identify a record; updates may not change them.
IDENTITY_KEYS = frozenset({"image_id", "receipt_id", "line_id", "word_id", "text"})
LabelStatus = Literal["NONE", "PENDING", "VALID", "INVALID", "NEEDS_REVIEW"]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1


class DeltaMerge(_Payload):
    """Upsert every record of a delta (a ChromaDB directory, archived)."""

    type: Literal["delta_merge"] = "delta_merge"
    key: str = Field(min_length=1, description="object store key of the archive")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    records: int = Field(ge=0)
    dimension: int | None = Field(default=None, ge=1)


class MetadataUpdate(_Payload):
    """Receipt-level metadata changed; applies to every record of a receipt.

    A key set to ``None`` is removed from the records' metadata.
    """

    type: Literal["metadata_update"] = "metadata_update"
    image_id: ImageId
    receipt_id: PositiveId
    changes: dict[MetadataKey, Scalar | None] = Field(min_length=1)

    @field_validator("changes")
    @classmethod
    def _identity_is_fixed(
        cls, changes: dict[str, Scalar | None]
    ) -> dict[str, Scalar | None]:
        fixed = sorted(IDENTITY_KEYS.intersection(changes))
        if fixed:
            raise ValueError(f"identity keys cannot be changed: {fixed}")
        return changes


class LabelUpdate(_Payload):
    """The whole label state of one word, so that applying it is idempotent."""

    type: Literal["label_update"] = "label_update"
    image_id: ImageId
    receipt_id: PositiveId
    line_id: PositiveId
    word_id: PositiveId
    valid_labels: list[Label] = Field(default_factory=list)
    invalid_labels: list[Label] = Field(default_factory=list)
    status: LabelStatus = "NONE"
    proposed_by: str | None = Field(default=None, max_length=200)
    validated_at: datetime | None = None

    @model_validator(mode="after")
    def _labels_are_disjoint(self) -> LabelUpdate:
        both = sorted(set(self.valid_labels) & set(self.invalid_labels))
        if both:
            raise ValueError(f"labels in both valid and invalid lists: {both}")
        return self


class RecordsDelete(_Payload):
    """A receipt, a line or a word was deleted; remove its records."""

    type: Literal["records_delete"] = "records_delete"
    image_id: ImageId
    receipt_id: PositiveId
    line_id: PositiveId | None = None
    word_id: PositiveId | None = None

    @model_validator(mode="after")
    def _word_needs_line(self) -> RecordsDelete:
        if self.word_id is not None and self.line_id is None:
            raise ValueError("word_id given without line_id")
        return self


class SnapshotRequest(_Payload):
    """Take a durable snapshot of the collection once this event is applied."""

    type: Literal["snapshot_request"] = "snapshot_request"
    reason: str = Field(default="", max_length=500)


class SnapshotRecorded(_Payload):
    """A snapshot of a version was uploaded completely (bookkeeping)."""

    type: Literal["snapshot_recorded"] = "snapshot_recorded"
    version: str
    applied_seq: int = Field(ge=0)
    location: str
    digest: str


class LatestMoved(_Payload):
    """The latest-snapshot pointer now names ``version`` (bookkeeping)."""

    type: Literal["latest_moved"] = "latest_moved"
    version: str
    previous_version: str | None = None
    applied_seq: int = Field(ge=0)


class EventParked(_Payload):
    """An event failed after its retries; the collection stopped at it."""

    type: Literal["event_parked"] = "event_parked"
    parked_seq: int = Field(ge=1)
    error: str
    attempts: int = Field(ge=1)


class EventSkipped(_Payload):
    """An operator decided that the event at ``skipped_seq`` is not applied."""

    type: Literal["event_skipped"] = "event_skipped"
    skipped_seq: int = Field(ge=1)
    reason: str = Field(min_length=1)


Payload = Annotated[
    DeltaMerge
    | MetadataUpdate
    | LabelUpdate
    | RecordsDelete
    | SnapshotRequest
    | SnapshotRecorded
    | LatestMoved
    | EventParked
    | EventSkipped,
    Field(discriminator="type"),
]

#: Kinds that change no records but still advance ``applied_seq``.
BOOKKEEPING_TYPES = frozenset(
    {"snapshot_recorded", "latest_moved", "event_parked", "event_skipped"}
)
#: Kinds a producer may append through the public API and CLI.
PRODUCER_TYPES = frozenset(
    {
        "delta_merge",
        "metadata_update",
        "label_update",
        "records_delete",
        "snapshot_request",
    }
)


def new_event_id() -> str:
    """A fresh, time-sortable event id."""
    return str(ULID())


class NewEvent(BaseModel):
    """An event as a producer submits it, before the journal numbers it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    collection: CollectionName
    payload: Payload
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)
    producer: str = Field(default="unknown", max_length=200)
    event_id: str = Field(default_factory=new_event_id)


class Envelope(BaseModel):
    """An event as the journal stores and publishes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    collection: CollectionName
    seq: int = Field(ge=1)
    event_id: str
    idempotency_key: str | None = None
    recorded_at: datetime
    producer: str
    payload: Payload

    @computed_field  # type: ignore[prop-decorator]
    @property
    def type(self) -> str:
        """The payload kind, repeated on the envelope for routing and tables."""
        return self.payload.type

    @model_validator(mode="before")
    @classmethod
    def _drop_derived_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and "type" in data:
            data = dict(data)
            kind = data.pop("type")
            payload = data.get("payload")
            if isinstance(payload, dict) and payload.get("type", kind) != kind:
                raise ValueError(
                    f"envelope type {kind!r} differs from payload type "
                    f"{payload.get('type')!r}"
                )
        return data

    @property
    def is_bookkeeping(self) -> bool:
        """True for kinds that change no records."""
        return self.payload.type in BOOKKEEPING_TYPES

    def to_json(self) -> str:
        """The canonical JSON form stored in the journal and on the stream."""
        return self.model_dump_json(exclude_none=False)

    @classmethod
    def from_json(cls, data: str | bytes) -> Envelope:
        """Parse the JSON form, upcasting payloads written by older code."""
        # Imported here: journal.upcast builds on this module.
        from journal.upcast import parse_envelope

        return parse_envelope(data)
