"""Fixtures shared by the journal tests: a steppable clock and the backends.

The contract suites run once per backend named in :data:`JOURNAL_FACTORIES`
and :data:`OBJECT_STORE_FACTORIES`. Adding a backend is one entry: a callable
that takes a :class:`BackendSetup` (and, for journals, a publisher) and
returns a fresh instance over the same storage each time it is called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from journal.base import Journal, Publisher
from journal.local_store import LocalObjectStore
from journal.objectstore import ObjectStore
from journal.sqlite import SQLiteJournal
from tests.aws.moto_backends import dynamodb_journal
from tests.aws.moto_s3 import s3_object_store

T0 = datetime(2025, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)


class SteppingClock:
    """A clock that stands still until a test moves it.

    ``fail_after`` makes the clock raise on the call after that many calls,
    which lets a test break a batch in the middle of a backend's write.
    """

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self.calls = 0
        self.fail_after: int | None = None

    def __call__(self) -> datetime:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("clock failure injected by the test")
        self.calls += 1
        return self.now

    def advance(self, seconds: float = 1.0) -> datetime:
        """Move the clock forward and return the new time."""
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass(frozen=True)
class BackendSetup:
    """What a backend factory may use to build an instance."""

    request: pytest.FixtureRequest
    tmp_path: Path
    clock: SteppingClock


JournalFactory = Callable[[BackendSetup, Publisher | None], Journal]
ObjectStoreFactory = Callable[[BackendSetup], ObjectStore]


def _sqlite_journal(setup: BackendSetup, publisher: Publisher | None) -> Journal:
    return SQLiteJournal(
        setup.tmp_path / "journal" / "journal.sqlite3",
        clock=setup.clock,
        publisher=publisher,
    )


def _local_object_store(setup: BackendSetup) -> ObjectStore:
    return LocalObjectStore(setup.tmp_path / "objects")


JOURNAL_FACTORIES: dict[str, JournalFactory] = {
    "sqlite": _sqlite_journal,
    "dynamodb": dynamodb_journal,
}
OBJECT_STORE_FACTORIES: dict[str, ObjectStoreFactory] = {
    "local": _local_object_store,
    "s3": s3_object_store,
}


@pytest.fixture
def clock() -> SteppingClock:
    """A frozen clock at :data:`T0`; call ``advance`` to move it."""
    return SteppingClock()


@pytest.fixture
def backend_setup(
    request: pytest.FixtureRequest, tmp_path: Path, clock: SteppingClock
) -> BackendSetup:
    """The arguments every backend factory receives."""
    return BackendSetup(request=request, tmp_path=tmp_path, clock=clock)


@pytest.fixture(params=sorted(JOURNAL_FACTORIES))
def make_journal(
    request: pytest.FixtureRequest, backend_setup: BackendSetup
) -> Iterator[Callable[..., Journal]]:
    """Open journals of one backend over the same storage; closed at teardown."""
    factory = JOURNAL_FACTORIES[request.param]
    opened: list[Journal] = []

    def make(publisher: Publisher | None = None) -> Journal:
        journal = factory(backend_setup, publisher)
        opened.append(journal)
        return journal

    yield make
    for journal in opened:
        journal.close()


@pytest.fixture
def journal(make_journal: Callable[..., Journal]) -> Journal:
    """A journal of each backend, on the test's :func:`clock`."""
    return make_journal()


@pytest.fixture(params=sorted(OBJECT_STORE_FACTORIES))
def make_object_store(
    request: pytest.FixtureRequest, backend_setup: BackendSetup
) -> Callable[[], ObjectStore]:
    """Open object stores of one backend over the same storage."""
    factory = OBJECT_STORE_FACTORIES[request.param]
    return lambda: factory(backend_setup)


@pytest.fixture
def object_store(make_object_store: Callable[[], ObjectStore]) -> ObjectStore:
    """An object store of each backend."""
    return make_object_store()
