"""Errors raised by the consumer (``pipeline/``).

Each names the collection (and seq, version or path) it concerns::

    PipelineError
    ├── EventApplyError           an event failed after its retries
    ├── JournalGapError           the journal lacks the next seq
    ├── PromotionRefused          compare-and-swap on the live version lost
    ├── LeaseUnavailable          another writer holds the collection lease
    ├── VersionCorrupt            a version's files do not match its manifest
    ├── ChromaOperationError      a ChromaDB call failed (pipeline/chroma.py)
    ├── CollectionConfigMismatch  stored collection settings differ
    ├── NoLiveVersion             nothing promoted yet
    ├── WorkingCopyBusy           another local process uses the working copy
    └── PublishError              a version could not be written
"""

from __future__ import annotations

from journal.errors import ChromaJournalError


class PipelineError(ChromaJournalError):
    """Something went wrong while applying, publishing or promoting."""


class EventApplyError(PipelineError):
    """An event could not be applied to its collection."""

    def __init__(self, collection: str, seq: int, cause: str) -> None:
        super().__init__(f"{collection} seq {seq}: {cause}")
        self.collection = collection
        self.seq = seq
        self.cause = cause


class JournalGapError(PipelineError):
    """The journal has no event at a seq the consumer needs next."""

    def __init__(self, collection: str, missing_seq: int) -> None:
        super().__init__(
            f"{collection}: the journal has no event at seq {missing_seq}; "
            "the consumer will not advance past it"
        )
        self.collection = collection
        self.missing_seq = missing_seq


class PromotionRefused(PipelineError):
    """A compare-and-swap promotion found a state it did not expect."""

    def __init__(self, collection: str, reason: str) -> None:
        super().__init__(f"promotion of {collection} refused: {reason}")
        self.collection = collection
        self.reason = reason


class LeaseUnavailable(PipelineError):
    """Another writer holds the collection lease."""

    def __init__(self, collection: str, holder: str | None) -> None:
        super().__init__(f"lease on {collection} is held by {holder!r}")
        self.collection = collection
        self.holder = holder


class VersionCorrupt(PipelineError):
    """A version's files do not match its manifest."""


class ChromaOperationError(PipelineError):
    """A ChromaDB call failed; raised only by :mod:`pipeline.chroma`."""

    def __init__(self, operation: str, path: str, cause: str) -> None:
        super().__init__(f"ChromaDB {operation} failed on {path}: {cause}")
        self.operation = operation
        self.path = path
        self.cause = cause


class CollectionConfigMismatch(PipelineError):
    """A stored collection was created with other settings than configured."""

    def __init__(self, collection: str, setting: str, stored: object, wanted: object):
        super().__init__(
            f"collection {collection!r} has {setting}={stored!r}, "
            f"but the consumer is configured with {wanted!r}"
        )
        self.collection = collection
        self.setting = setting
        self.stored = stored
        self.wanted = wanted


class NoLiveVersion(PipelineError, LookupError):
    """The shared store has no promoted version of the collection."""

    def __init__(self, collection: str) -> None:
        super().__init__(f"collection {collection!r} has no live version")
        self.collection = collection


class WorkingCopyBusy(PipelineError):
    """Another process on this host is using the collection's working copy."""

    def __init__(self, collection: str, path: str) -> None:
        super().__init__(
            f"the working copy of {collection!r} at {path} is in use by another process"
        )
        self.collection = collection
        self.path = path


class PublishError(PipelineError):
    """A version could not be written to the shared store."""

    def __init__(self, collection: str, version: str, reason: str) -> None:
        super().__init__(f"publishing {collection} version {version}: {reason}")
        self.collection = collection
        self.version = version
        self.reason = reason
