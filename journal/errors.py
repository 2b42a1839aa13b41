"""Errors raised by the journal layer.

Every error the project raises derives from :class:`ChromaJournalError`; each
package has its own subtree so that callers can catch one layer at a time::

    ChromaJournalError
    ├── JournalError                      (journal/)
    │   ├── InvalidCollectionName
    │   ├── EventTooLarge
    │   ├── JournalUnavailable
    │   ├── UnreadableEvent
    │   ├── ObjectStoreError
    │   │   ├── ObjectNotFound
    │   │   └── UnsafeObjectKey
    │   └── DeltaError
    │       ├── DeltaIntegrityError
    │       └── UnsafeArchiveError
    └── PipelineError                     (pipeline/errors.py)
"""

from __future__ import annotations


class ChromaJournalError(Exception):
    """Root of every error raised by chroma-journal."""


class JournalError(ChromaJournalError):
    """Something went wrong in the journal layer."""


class InvalidCollectionName(JournalError, ValueError):
    """A collection name broke the naming rule."""

    def __init__(self, name: object, rule: str) -> None:
        super().__init__(f"invalid collection name {name!r}: {rule}")
        self.name = name
        self.rule = rule


class EventTooLarge(JournalError):
    """An event is larger than the backend can store in one item."""

    def __init__(self, collection: str, size: int, limit: int) -> None:
        super().__init__(
            f"event for collection {collection!r} is {size} bytes, over the "
            f"limit of {limit} bytes; put large payloads in the object store "
            "and reference them from the event"
        )
        self.collection = collection
        self.size = size
        self.limit = limit


class JournalUnavailable(JournalError):
    """The journal backend could not be reached or refused the operation."""


class UnreadableEvent(JournalError, ValueError):
    """A stored event cannot be decoded, or is not the event its row names."""

    def __init__(self, collection: str, seq: int, cause: str) -> None:
        super().__init__(f"{collection} seq {seq} is unreadable: {cause}")
        self.collection = collection
        self.seq = seq
        self.cause = cause


class ObjectStoreError(JournalError):
    """An object store operation failed."""


class ObjectNotFound(ObjectStoreError, KeyError):
    """The object store holds no object under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no object under key {self.key!r}"


class UnsafeObjectKey(ObjectStoreError, ValueError):
    """An object key would escape the store (absolute, `..`, empty part)."""


class DeltaError(JournalError):
    """A delta could not be written or read."""


class DeltaIntegrityError(DeltaError):
    """A delta's bytes do not match the sha256 its event carries."""

    def __init__(self, key: str, expected: str, actual: str) -> None:
        super().__init__(
            f"delta {key!r} has sha256 {actual}, but its event says {expected}"
        )
        self.key = key
        self.expected = expected
        self.actual = actual


class UnsafeArchiveError(DeltaError):
    """A delta archive holds a member that could escape or abuse the target."""

    def __init__(self, key: str, member: str, reason: str) -> None:
        super().__init__(f"delta {key!r}: member {member!r} refused: {reason}")
        self.key = key
        self.member = member
        self.reason = reason
