"""Errors raised by the consumer (``pipeline/``)."""

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
