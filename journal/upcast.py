"""Upcasting: reading payloads written by older code as the current model.

Every payload carries a ``schema_version``. When a payload's shape changes,
its model's version goes up and one *upcaster* is registered here that turns
the raw payload dict of the previous version into the next one. Reading
(:func:`parse_envelope`) applies the chain of upcasters before validation,
so that the rest of the code only ever sees current models and the journal
itself is never rewritten::

    stored JSON ──json──▶ dict ──upcast v0▶v1▶..▶current──▶ Envelope (validated)

A payload newer than this code knows is refused with
:class:`UnknownSchemaVersion` rather than guessed at: the reader has to be
upgraded first. A payload without ``schema_version`` is read as version 1,
the first version of this project's own models.

Registered upcasters:

- ``label_update`` 0 → 1: the previous system stored a word's label lists as
  one comma-joined string with a comma before and after every label
  (``",GRAND_TOTAL,TAX,"``); the current payload holds lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, get_args

from journal.errors import JournalError
from journal.events import Envelope, Payload
from journal.labels import split_labels

RawPayload = dict[str, Any]
#: Turns a payload dict of one version into the next; it need not set
#: ``schema_version`` (the registry does).
Upcaster = Callable[[RawPayload], RawPayload]

#: The version a payload without ``schema_version`` is read as.
VERSION_WHEN_MISSING = 1


class UpcastError(JournalError, ValueError):
    """A stored payload could not be brought to the current version."""

    def __init__(self, kind: str, version: object, reason: str) -> None:
        super().__init__(f"{kind} payload with schema_version {version!r}: {reason}")
        self.kind = kind
        self.version = version
        self.reason = reason


class UnknownSchemaVersion(UpcastError):
    """A payload was written by newer code than this reader."""

    def __init__(self, kind: str, version: int, current: int) -> None:
        super().__init__(
            kind,
            version,
            f"this reader knows versions up to {current}; upgrade chroma-journal "
            "before reading this journal",
        )
        self.current = current


def current_versions() -> dict[str, int]:
    """Each payload kind's current ``schema_version``, read from the models."""
    union = get_args(Payload)[0]
    versions: dict[str, int] = {}
    for model in get_args(union):
        kind = model.model_fields["type"].default
        versions[kind] = model.model_fields["schema_version"].default
    return versions


class UpcasterRegistry:
    """Upcasters by (kind, version they read), applied in a chain."""

    def __init__(self, current: Mapping[str, int]) -> None:
        self._current = dict(current)
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, kind: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: register an upcaster from ``from_version`` to the next."""
        if kind not in self._current:
            raise ValueError(f"unknown payload kind {kind!r}")
        if from_version >= self._current[kind]:
            raise ValueError(
                f"{kind} is at version {self._current[kind]}; nothing to upcast "
                f"from version {from_version}"
            )

        def add(upcaster: Upcaster) -> Upcaster:
            key = (kind, from_version)
            if key in self._upcasters:
                raise ValueError(f"an upcaster for {kind} v{from_version} exists")
            self._upcasters[key] = upcaster
            return upcaster

        return add

    def upcast(self, payload: RawPayload) -> RawPayload:
        """``payload`` at its kind's current version (the same dict when it
        already is). Unknown kinds pass through for validation to report."""
        kind = payload.get("type")
        if not isinstance(kind, str) or kind not in self._current:
            return payload
        current = self._current[kind]
        version = _version_of(kind, payload)
        if version > current:
            raise UnknownSchemaVersion(kind, version, current)
        while version < current:
            upcaster = self._upcasters.get((kind, version))
            if upcaster is None:
                raise UpcastError(kind, version, "no upcaster is registered")
            payload = {**upcaster(dict(payload)), "schema_version": version + 1}
            version += 1
        return payload


def _version_of(kind: str, payload: RawPayload) -> int:
    version = payload.get("schema_version", VERSION_WHEN_MISSING)
    # bool is an int to Python, but never a version.
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise UpcastError(kind, version, "schema_version must be an integer >= 0")
    return version


#: The registry :func:`parse_envelope` uses.
REGISTRY = UpcasterRegistry(current_versions())


@REGISTRY.register("label_update", 0)
def _label_lists_from_joined_strings(payload: RawPayload) -> RawPayload:
    """Version 0 (the previous system): ``",A,B,"`` strings instead of lists."""
    for key in ("valid_labels", "invalid_labels"):
        value = payload.get(key)
        if value is None or isinstance(value, str):
            labels = (label.strip() for label in split_labels(value))
            payload[key] = list(dict.fromkeys(label for label in labels if label))
    return payload


def upcast_payload(payload: RawPayload) -> RawPayload:
    """``payload`` brought to its kind's current version."""
    return REGISTRY.upcast(payload)


def parse_envelope(data: bytes | str) -> Envelope:
    """Parse a stored or streamed envelope, upcasting an old payload first.

    :meth:`Envelope.from_json`, which every journal backend and the stream
    decoder use, delegates here.
    Raises ``ValueError`` for text that is not JSON, :class:`UpcastError` for
    a payload that cannot be upcast and pydantic's ``ValidationError`` for
    one that does not validate.
    """
    raw = json.loads(data)
    if isinstance(raw, dict) and isinstance(raw.get("payload"), dict):
        raw["payload"] = upcast_payload(raw["payload"])
    return Envelope.model_validate(raw)
