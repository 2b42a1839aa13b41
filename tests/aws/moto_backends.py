"""moto-backed AWS for tests: clients, tables and the contract-suite factories.

Everything runs in-process under ``moto.mock_aws``; no test talks to AWS.
moto behaviours accounted for here (also listed in the issue note):

- moto's in-process backend is not linearizable under threads: a cancelled
  ``TransactWriteItems`` restores a copy of the whole table taken when it
  started, erasing writes other threads made meanwhile, and a conditional
  check and its write are separate Python steps. DynamoDB applies each
  request atomically; :class:`SerializedClient` restores that by running one
  request at a time (append races still happen: a head read and the write
  are separate requests).
- that copy is a deep copy of the table, so every transaction costs
  O(table size). :func:`cheap_transaction_backup` saves and restores only
  the items the transaction names, which is what the rollback needs.
- moto answers a Query by walking every item of the table and sorting the
  matches, so even a ``Limit=1`` head read costs O(table size); DynamoDB
  reads one partition's sorted index. :func:`partition_scoped_queries` hands
  moto's own Query only the queried partition (and, for a newest-first
  ``Limit=1`` read, only that partition's newest item). Together these keep
  the 1,600-append concurrency test to seconds instead of many minutes.
"""

from __future__ import annotations

import copy
import functools
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.comparisons import OpDefault
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models import table as moto_table
from moto.server import ThreadedMotoServer

from journal.aws_clients import client_config, make_client
from journal.base import Clock, Journal, Publisher
from journal.dynamodb import DynamoDBJournal, create_journal_table
from pipeline.lease import Lease
from pipeline.lease_dynamodb import DynamoDBLease, create_lease_table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kinesis import KinesisClient

REGION = "us-east-1"
JOURNAL_TABLE = "chroma-journal-test"
LEASE_TABLE = "chroma-journal-leases-test"
STATUS_TABLE = "chroma-journal-status-test"
STREAM = "chroma-journal-test"


#: Client methods that make no request, so need no lock.
_NOT_REQUESTS = frozenset({"get_paginator", "get_waiter", "can_paginate", "close"})


class SerializedClient:
    """A boto3 client proxy that runs one request at a time (see above)."""

    def __init__(self, client: Any, lock: threading.Lock | None = None) -> None:
        self._client = client
        self._lock = lock or threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name in _NOT_REQUESTS or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


@contextmanager
def cheap_transaction_backup() -> Iterator[None]:
    """Roll a cancelled transaction back item by item (see above)."""
    real_transact = DynamoDBBackend.transact_write_items

    def transact(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = [_saved_item(self, action) for action in transact_items]
        try:
            with _tables_not_deep_copied():
                real_transact(self, transact_items)
        except Exception:
            for table, keys, item in reversed([s for s in saved if s]):
                _restore(table, keys, item)
            raise

    with mock.patch.object(DynamoDBBackend, "transact_write_items", transact):
        yield


def _saved_item(backend: Any, action: dict[str, Any]) -> tuple[Any, Any, Any] | None:
    operation = next(iter(action.values()))
    table = backend.tables.get(operation.get("TableName"))
    if table is None:
        return None
    key = operation.get("Key") or {
        name: operation["Item"][name]
        for name in (table.hash_key_attr, table.range_key_attr)
        if name and name in operation.get("Item", {})
    }
    try:
        keys = backend.get_keys_value(table, key)
    except Exception:  # moto reports a malformed key itself
        return None
    return table, keys, copy.deepcopy(table.get_item(*keys))


def _restore(table: Any, keys: tuple[Any, Any], item: Any) -> None:
    hash_key, range_key = keys
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    elif item is None:
        table.items.get(hash_key, {}).pop(range_key, None)
    else:
        table.items[hash_key][range_key] = item


@contextmanager
def _tables_not_deep_copied() -> Iterator[None]:
    """moto's own whole-table backup becomes the table itself, so its
    rollback is a no-op and :func:`_restore` does the work."""
    real_deepcopy = copy.deepcopy

    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, moto_table.Table):
            return value
        return real_deepcopy(value, memo)

    fake_copy = mock.Mock(wraps=copy)
    fake_copy.deepcopy = deepcopy
    with mock.patch("moto.dynamodb.models.copy", fake_copy):
        yield


@contextmanager
def partition_scoped_queries() -> Iterator[None]:
    """Let moto's Query see only the queried partition (see above)."""
    real_query = moto_table.Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None:
            return real_query(self, hash_key, *args, **kwargs)
        everything = self.items
        partition = dict(everything[hash_key]) if hash_key in everything else {}
        if _newest_only(args, kwargs) and partition:
            newest = max(partition, key=lambda key: Decimal(key.value))
            partition = {newest: partition[newest]}
        self.items = {hash_key: partition}
        try:
            return real_query(self, hash_key, *args, **kwargs)
        finally:
            self.items = everything

    with mock.patch.object(moto_table.Table, "query", query):
        yield


def _newest_only(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """A ``ScanIndexForward=False, Limit=1`` read of a whole partition from
    its start, with no filter: its answer is the partition's newest item."""
    range_comparison, _, limit, start, forward = args[:5]
    filtered = len(args) > 8 and not isinstance(args[8], (type(None), OpDefault))
    return (
        range_comparison is None
        and limit == 1
        and start is None
        and forward is False
        and not filtered
        and not kwargs.get("range_key_conditions")
    )


@dataclass
class MotoAws:
    """Clients on one test's moto state, with the project's tables made."""

    dynamodb: DynamoDBClient
    kinesis: KinesisClient

    def create_stream(self, name: str = STREAM, shards: int = 1) -> str:
        """Create a Kinesis stream and return its name."""
        self.kinesis.create_stream(StreamName=name, ShardCount=shards)
        self.kinesis.get_waiter("stream_exists").wait(StreamName=name)
        return name


_STASH = pytest.StashKey[MotoAws]()


@functools.cache
def _session() -> boto3.session.Session:
    """One boto3 session for every test client: a new session loads the
    service models again, which costs a few hundred milliseconds."""
    return boto3.session.Session()


def moto_aws(request: pytest.FixtureRequest) -> MotoAws:
    """The test's moto world, started on first use and stopped at teardown.

    Every call within one test returns the same world, so factories that are
    called twice open two clients on the same tables.
    """
    node = request.node
    if _STASH in node.stash:
        return node.stash[_STASH]
    mocked = mock_aws()
    mocked.start()
    request.addfinalizer(mocked.stop)
    for shim in (cheap_transaction_backup(), partition_scoped_queries()):
        shim.__enter__()
        request.addfinalizer(functools.partial(shim.__exit__, None, None, None))
    world = MotoAws(
        dynamodb=make_client("dynamodb", region=REGION, session=_session()),
        kinesis=make_client("kinesis", region=REGION, session=_session()),
    )
    create_journal_table(world.dynamodb, JOURNAL_TABLE)
    node.stash[_STASH] = world
    return world


def dynamodb_journal(setup: Any, publisher: Publisher | None) -> Journal:
    """The journal contract factory: a DynamoDB journal on the test's clock
    (``setup`` is ``tests/journal/conftest.py``'s ``BackendSetup``)."""
    world = moto_aws(setup.request)
    return DynamoDBJournal(
        world.dynamodb, JOURNAL_TABLE, clock=setup.clock, publisher=publisher
    )


# -- a moto server, for factories that get no pytest request ------------------

_server: ThreadedMotoServer | None = None


def moto_server_url() -> str:
    """The URL of a moto server on loopback, started once per test session.

    Factories whose signature carries no pytest request (so they cannot stop
    a ``mock_aws`` after their test) use it, each with tables of its own.
    """
    global _server
    if _server is None:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        _server = server
    host, port = _server.get_host_and_port()
    return f"http://{host}:{port}"


@functools.cache
def _server_session() -> boto3.session.Session:
    """Fake credentials, so that no credential lookup leaves the machine."""
    return boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=REGION,
    )


def moto_server_dynamodb() -> DynamoDBClient:
    """A DynamoDB client on :func:`moto_server_url` with fake credentials."""
    return _server_session().client(
        "dynamodb", endpoint_url=moto_server_url(), config=client_config()
    )


def dynamodb_lease(clock: Clock) -> Lease:
    """A DynamoDB lease on a fresh table of the session's moto server."""
    client = moto_server_dynamodb()
    table = f"leases-{uuid.uuid4().hex[:12]}"
    create_lease_table(client, table)
    return DynamoDBLease(client, table, clock=clock)
