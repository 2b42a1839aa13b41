"""Object store and journal wrappers that inject races and failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from journal.base import AppendResult, Journal
from journal.events import Envelope, NewEvent
from journal.objectstore import CasOutcome, ObjectInfo, ObjectStore, Versioned


class InterruptedUpload(RuntimeError):
    """Raised by :class:`WrappedStore` in place of a crash."""


class WrappedStore(ObjectStore):
    """Delegates to ``inner``; hooks let a test act between calls."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.url = inner.url
        #: Called with the key after each read_versioned.
        self.after_read: Callable[[str], None] | None = None
        #: put_file calls to let through before raising InterruptedUpload.
        self.put_files_left: int | None = None

    def put_bytes(self, key: str, data: bytes) -> None:
        self.inner.put_bytes(key, data)

    def put_file(self, key: str, path: Path) -> None:
        if self.put_files_left is not None:
            if self.put_files_left == 0:
                raise InterruptedUpload(key)
            self.put_files_left -= 1
        self.inner.put_file(key, path)

    def get_bytes(self, key: str) -> bytes:
        return self.inner.get_bytes(key)

    def get_file(self, key: str, dest: Path) -> None:
        self.inner.get_file(key, dest)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str) -> list[ObjectInfo]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def read_versioned(self, key: str) -> Versioned | None:
        found = self.inner.read_versioned(key)
        if self.after_read is not None:
            self.after_read(key)
        return found

    def put_if(self, key: str, data: bytes, *, etag: str | None) -> CasOutcome:
        return self.inner.put_if(key, data, etag=etag)


class FailingJournal(Journal):
    """A journal whose appends fail while ``failing`` is set."""

    def __init__(self, inner: Journal) -> None:
        super().__init__()
        self.inner = inner
        self.failing = True

    def _append_batch(
        self, collection: str, events: Sequence[NewEvent]
    ) -> list[AppendResult]:
        if self.failing:
            raise RuntimeError("journal append failure injected by the test")
        return self.inner.append_batch(events)

    def read(
        self, collection: str, after: int = 0, upto: int | None = None
    ) -> Iterator[Envelope]:
        return self.inner.read(collection, after, upto)

    def head(self, collection: str) -> int:
        return self.inner.head(collection)

    def collections(self) -> list[str]:
        return self.inner.collections()
