"""Items of the receipts table, as the stream adapter reads them.

Keys follow the receipts model: PK ``IMAGE#{uuid}``, and SK::

    RECEIPT#00001                                       a receipt
    RECEIPT#00001#PLACE                                 its place (metadata)
    RECEIPT#00001#LINE#00002                            a line
    RECEIPT#00001#LINE#00002#WORD#00003                 a word
    RECEIPT#00001#LINE#00002#WORD#00003#LABEL#TOTAL     a label of that word

Every other item kind (images, letters, analyses, ...) is of no interest.
This module parses keys, finds changes of watched fields, and builds a
word's whole label state from its label items.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, cast

import structlog

from journal.events import LabelStatus, LabelUpdate, Scalar

log = structlog.get_logger(__name__)

ItemKind = Literal["receipt", "place", "line", "word", "label"]

#: Place attribute → metadata key in the collections.
PLACE_FIELDS = {
    "merchant_name": "merchant_name",
    "merchant_category": "merchant_category",
    "formatted_address": "address",
    "phone_number": "phone_number",
    "place_id": "place_id",
}
#: Label attributes whose change changes the word's label state. The
#: receipts model names the time ``timestamp_added``; ``timestamp`` is read
#: when that is absent.
LABEL_FIELDS = (
    "label",
    "validation_status",
    "label_proposed_by",
    "timestamp_added",
    "timestamp",
)
#: When a word's labels disagree, the status that needs attention first
#: wins: an open review outranks a decision, a decision outranks nothing.
STATUS_PRECEDENCE: tuple[LabelStatus, ...] = (
    "NEEDS_REVIEW",
    "PENDING",
    "VALID",
    "INVALID",
    "NONE",
)

_PK = re.compile(r"IMAGE#(?P<image>[0-9A-Za-z-]{1,64})")
_SK = re.compile(
    r"RECEIPT#(?P<receipt>\d{5})"
    r"(?:(?P<place>#PLACE)"
    r"|#LINE#(?P<line>\d{5})(?:#WORD#(?P<word>\d{5})(?:#LABEL#(?P<label>[A-Z][A-Z0-9_]*))?)?"
    r")?"
)


@dataclass(frozen=True)
class ItemRef:
    """What a receipts-table key names."""

    kind: ItemKind
    image_id: str
    receipt_id: int
    line_id: int | None = None
    word_id: int | None = None
    label: str | None = None

    def label_prefix(self) -> str:
        """SK prefix of every label item of this word."""
        return (
            f"RECEIPT#{self.receipt_id:05d}#LINE#{self.line_id:05d}"
            f"#WORD#{self.word_id:05d}#LABEL#"
        )


def parse_key(pk: str, sk: str) -> ItemRef | None:
    """The item a key names, or None for item kinds the adapter ignores."""
    image = _PK.fullmatch(pk)
    match = _SK.fullmatch(sk)
    if image is None or match is None:
        return None
    parts = match.groupdict()
    receipt = int(parts["receipt"])
    if receipt == 0 or any(
        parts[name] is not None and int(parts[name]) == 0 for name in ("line", "word")
    ):
        return None
    return ItemRef(
        kind=_kind_of(parts),
        image_id=image["image"],
        receipt_id=receipt,
        line_id=int(parts["line"]) if parts["line"] else None,
        word_id=int(parts["word"]) if parts["word"] else None,
        label=parts["label"],
    )


def _kind_of(parts: Mapping[str, str | None]) -> ItemKind:
    if parts["place"]:
        return "place"
    if parts["label"]:
        return "label"
    if parts["word"]:
        return "word"
    if parts["line"]:
        return "line"
    return "receipt"


def changed(
    old: Mapping[str, Any], new: Mapping[str, Any], fields: Iterable[str]
) -> list[str]:
    """The watched ``fields`` whose value differs between two images."""
    return [name for name in fields if old.get(name) != new.get(name)]


def place_changes(
    old: Mapping[str, Any], new: Mapping[str, Any]
) -> dict[str, Scalar | None]:
    """Metadata changes between two place images; a removed field is None."""
    return {
        PLACE_FIELDS[name]: scalar(new.get(name))
        for name in changed(old, new, PLACE_FIELDS)
    }


def scalar(value: Any) -> Scalar | None:
    """A deserialised DynamoDB value as a metadata scalar."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset | list | tuple):
        return ",".join(sorted(str(part) for part in value))
    return json.dumps(value, sort_keys=True, default=str)


def label_state(ref: ItemRef, labels: Iterable[Mapping[str, Any]]) -> LabelUpdate:
    """The whole label state of the word ``ref`` from its label items.

    A label's name is taken from its item's key, and a key is unique, so a
    label can be valid or invalid but never both.
    """
    by_label = {_label_name(item): item for item in labels}
    statuses = {label: _status(item) for label, item in by_label.items()}
    newest = max(
        by_label, key=lambda label: (_time(by_label[label]), label), default=None
    )
    decided = [
        _time(by_label[label])
        for label, s in statuses.items()
        if s in ("VALID", "INVALID")
    ]
    return LabelUpdate(
        image_id=ref.image_id,
        receipt_id=ref.receipt_id,
        line_id=cast(int, ref.line_id),
        word_id=cast(int, ref.word_id),
        valid_labels=sorted(label for label, s in statuses.items() if s == "VALID"),
        invalid_labels=sorted(label for label, s in statuses.items() if s == "INVALID"),
        status=next((s for s in STATUS_PRECEDENCE if s in statuses.values()), "NONE"),
        proposed_by=None
        if newest is None
        else _text(by_label[newest], "label_proposed_by"),
        validated_at=_parse_time(max(decided, default="")),
    )


def _label_name(item: Mapping[str, Any]) -> str:
    return str(item["SK"]).rsplit("#LABEL#", 1)[1]


def _status(item: Mapping[str, Any]) -> LabelStatus:
    raw = str(item.get("validation_status") or "NONE").upper()
    if raw not in STATUS_PRECEDENCE:
        log.warning("unknown_label_status", sk=item.get("SK"), status=raw)
        return "NONE"
    return raw


def _text(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value)[:200]


def _time(item: Mapping[str, Any]) -> str:
    return str(item.get("timestamp_added") or item.get("timestamp") or "")


def _parse_time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        log.warning("unreadable_label_time", value=value)
        return None
