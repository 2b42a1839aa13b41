"""How a word's label state is stored in its record's metadata.

ChromaDB metadata values are scalars, so label lists are stored as one
string with a comma before and after every label (``",GRAND_TOTAL,TAX,"``).
The outer commas let a reader match one label exactly with a ``$contains``
filter on ``",TAX,"`` without also matching ``TAX_RATE``. Producers, the
consumer and tests all go through :func:`label_metadata`, so there is one
encoding.
"""

from __future__ import annotations

from collections.abc import Iterable

from journal.events import LabelUpdate

VALID_LABELS_KEY = "valid_labels"
INVALID_LABELS_KEY = "invalid_labels"
STATUS_KEY = "label_status"
PROPOSED_BY_KEY = "label_proposed_by"
VALIDATED_AT_KEY = "label_validated_at"

#: Every metadata key a label update writes or removes.
LABEL_KEYS = (
    VALID_LABELS_KEY,
    INVALID_LABELS_KEY,
    STATUS_KEY,
    PROPOSED_BY_KEY,
    VALIDATED_AT_KEY,
)


def join_labels(labels: Iterable[str]) -> str | None:
    """Encode labels as ``",A,B,"`` (sorted, without repeats).

    Returns None for no labels: the key is then removed rather than stored
    as an empty string, so that "has labels" is a plain key test.
    """
    unique = sorted(set(labels))
    if not unique:
        return None
    return "," + ",".join(unique) + ","


def split_labels(value: str | None) -> list[str]:
    """Decode a value written by :func:`join_labels` (None gives ``[]``)."""
    if not value:
        return []
    return [label for label in value.split(",") if label]


def label_metadata(payload: LabelUpdate) -> dict[str, str | None]:
    """The metadata changes that apply ``payload`` to its word's record.

    A value of None means "remove this key". The result always names every
    key in :data:`LABEL_KEYS`, so applying it replaces the whole label state
    and applying it twice changes nothing.
    """
    validated_at = payload.validated_at
    return {
        VALID_LABELS_KEY: join_labels(payload.valid_labels),
        INVALID_LABELS_KEY: join_labels(payload.invalid_labels),
        STATUS_KEY: payload.status,
        PROPOSED_BY_KEY: payload.proposed_by,
        VALIDATED_AT_KEY: None if validated_at is None else validated_at.isoformat(),
    }
