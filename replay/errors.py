"""Errors raised by replay (``replay/``).

They form one subtree under the project's root, so that a caller can catch
every replay failure at once::

    ChromaJournalError
    └── ReplayError
        ├── TargetOutOfRange        the target seq is not in the journal
        ├── BaseNotUsable           the chosen base is unknown or after the target
        ├── BaseCorrupt             a restored base does not match its record
        ├── ReplayApplyError        an event failed after its retries
        ├── OutputExists            --out exists and is not empty
        └── RebuildBusy             another rebuild writes the same output
"""

from __future__ import annotations

from journal.errors import ChromaJournalError


class ReplayError(ChromaJournalError):
    """A rebuild, verify or plan could not be carried out."""


class TargetOutOfRange(ReplayError):
    """The requested target seq is beyond the journal head (or negative)."""

    def __init__(self, collection: str, target: int, head: int) -> None:
        super().__init__(
            f"{collection}: target seq {target} is outside the journal, whose "
            f"head is {head}"
        )
        self.collection = collection
        self.target = target
        self.head = head


class BaseNotUsable(ReplayError):
    """The base asked for does not exist or lies after the target."""

    def __init__(self, collection: str, version: str, reason: str) -> None:
        super().__init__(f"{collection}: cannot start from {version!r}: {reason}")
        self.collection = collection
        self.version = version
        self.reason = reason


class BaseCorrupt(ReplayError):
    """A restored snapshot does not hold what its record says."""

    def __init__(self, collection: str, version: str, reason: str) -> None:
        super().__init__(f"{collection}: restored base {version} is corrupt: {reason}")
        self.collection = collection
        self.version = version
        self.reason = reason


class ReplayApplyError(ReplayError):
    """An event could not be applied during a rebuild."""

    def __init__(self, collection: str, seq: int, cause: str) -> None:
        super().__init__(
            f"{collection} seq {seq}: {cause} (fix the cause, or skip the event "
            "with an event_skipped entry, then rebuild again)"
        )
        self.collection = collection
        self.seq = seq
        self.cause = cause


class OutputExists(ReplayError):
    """The output directory exists already and is not empty."""

    def __init__(self, path: str, holds: str) -> None:
        super().__init__(
            f"{path} already holds {holds}; remove it or choose another --out"
        )
        self.path = path
        self.holds = holds


class RebuildBusy(ReplayError):
    """Another rebuild is writing the same output directory."""

    def __init__(self, path: str) -> None:
        super().__init__(f"another rebuild is writing {path}")
        self.path = path
