"""The object store contract: every backend must pass these unchanged."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from journal.errors import ObjectNotFound, UnsafeObjectKey
from journal.local_store import LocalObjectStore
from journal.objectstore import CasOutcome, ObjectInfo, ObjectStore

POINTER = "lines/snapshots/latest.json"
UNSAFE_KEYS = ["../x", "/abs", "a//b", "a/./b", "a/../../b", "", "a\\b", "a/"]


# -- blobs --------------------------------------------------------------------


def test_put_and_get_bytes(object_store: ObjectStore) -> None:
    object_store.put_bytes("lines/deltas/1/delta.tar.gz", b"\x00archive\xff")

    assert object_store.get_bytes("lines/deltas/1/delta.tar.gz") == b"\x00archive\xff"
    assert object_store.exists("lines/deltas/1/delta.tar.gz")


def test_put_replaces_the_object(object_store: ObjectStore) -> None:
    object_store.put_bytes("a/b", b"old")
    object_store.put_bytes("a/b", b"new")

    assert object_store.get_bytes("a/b") == b"new"


def test_put_and_get_files(object_store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    data = bytes(range(256)) * 5000
    source.write_bytes(data)

    object_store.put_file("words/snapshots/v1/chroma.sqlite3", source)
    dest = tmp_path / "out" / "nested" / "copy.bin"
    object_store.get_file("words/snapshots/v1/chroma.sqlite3", dest)

    assert dest.read_bytes() == data


def test_missing_object_raises_object_not_found(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    object_store.put_bytes("lines/present", b"x")

    with pytest.raises(ObjectNotFound) as caught:
        object_store.get_bytes("lines/absent")
    with pytest.raises(ObjectNotFound):
        object_store.get_file("lines/absent", tmp_path / "dest")
    with pytest.raises(ObjectNotFound):
        object_store.get_bytes("lines")  # a prefix is not an object

    assert caught.value.key == "lines/absent"
    assert not object_store.exists("lines/absent")
    assert not (tmp_path / "dest").exists()


def test_list_returns_objects_under_prefix_sorted(object_store: ObjectStore) -> None:
    for key in ["lines/b", "lines/a/2", "lines/a/1", "linesx/c", "words/a"]:
        object_store.put_bytes(key, key.encode())

    assert object_store.list("lines/") == [
        ObjectInfo(key="lines/a/1", size=9),
        ObjectInfo(key="lines/a/2", size=9),
        ObjectInfo(key="lines/b", size=7),
    ]
    assert [info.key for info in object_store.list("lines")] == [
        "lines/a/1",
        "lines/a/2",
        "lines/b",
        "linesx/c",
    ]
    assert [info.key for info in object_store.list("lines/a/")] == [
        "lines/a/1",
        "lines/a/2",
    ]
    assert len(object_store.list("")) == 5
    assert object_store.list("nothing/") == []


def test_delete_removes_and_is_idempotent(object_store: ObjectStore) -> None:
    object_store.put_bytes("lines/a", b"x")

    object_store.delete("lines/a")
    object_store.delete("lines/a")
    object_store.delete("never/there")

    assert not object_store.exists("lines/a")
    assert object_store.list("lines/") == []


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused(object_store: ObjectStore, key: str) -> None:
    with pytest.raises(UnsafeObjectKey):
        object_store.put_bytes(key, b"x")
    with pytest.raises(UnsafeObjectKey):
        object_store.get_bytes(key)
    with pytest.raises(UnsafeObjectKey):
        object_store.put_if(key, b"x", etag=None)


# -- compare and swap ---------------------------------------------------------


def test_put_if_absent_creates_then_conflicts(object_store: ObjectStore) -> None:
    first = object_store.put_if(POINTER, b'{"version": "v1"}', etag=None)
    second = object_store.put_if(POINTER, b'{"version": "v2"}', etag=None)

    assert first is CasOutcome.WRITTEN
    assert second is CasOutcome.CONFLICT
    assert object_store.get_bytes(POINTER) == b'{"version": "v1"}'


def test_put_if_with_current_etag_writes(object_store: ObjectStore) -> None:
    object_store.put_if(POINTER, b"v1", etag=None)
    current = object_store.read_versioned(POINTER)
    assert current is not None and current.data == b"v1"

    outcome = object_store.put_if(POINTER, b"v2", etag=current.etag)

    assert outcome is CasOutcome.WRITTEN
    after = object_store.read_versioned(POINTER)
    assert after is not None and after.data == b"v2"
    assert after.etag != current.etag


def test_put_if_with_stale_etag_conflicts_and_keeps_content(
    object_store: ObjectStore,
) -> None:
    object_store.put_if(POINTER, b"v1", etag=None)
    stale = object_store.read_versioned(POINTER)
    assert stale is not None
    object_store.put_if(POINTER, b"v2", etag=stale.etag)

    outcome = object_store.put_if(POINTER, b"v3", etag=stale.etag)

    assert outcome is CasOutcome.CONFLICT
    assert object_store.get_bytes(POINTER) == b"v2"


def test_put_if_with_etag_on_absent_object_conflicts(
    object_store: ObjectStore,
) -> None:
    outcome = object_store.put_if(POINTER, b"v1", etag="0" * 64)

    assert outcome is CasOutcome.CONFLICT
    assert object_store.read_versioned(POINTER) is None


def test_threads_racing_put_if_with_same_etag_write_exactly_once(
    make_object_store: Callable[[], ObjectStore],
) -> None:
    make_object_store().put_if(POINTER, b"v0", etag=None)
    seen = make_object_store().read_versioned(POINTER)
    assert seen is not None
    writers = 8
    barrier = threading.Barrier(writers)
    outcomes: dict[int, CasOutcome] = {}

    # Every writer's content differs from "v0": an etag may be derived from
    # the content, so rewriting the same bytes would keep it valid.
    def race(index: int) -> None:
        store = make_object_store()  # one client per writer
        barrier.wait()
        outcomes[index] = store.put_if(POINTER, f"w{index}".encode(), etag=seen.etag)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(o.value for o in outcomes.values()) == ["conflict"] * 7 + ["written"]
    (winner,) = [i for i, o in outcomes.items() if o is CasOutcome.WRITTEN]
    assert make_object_store().get_bytes(POINTER) == f"w{winner}".encode()


# -- local backend specifics --------------------------------------------------


def _race_local_put_if(root: str, index: int, etag: str, barrier: Any) -> str:
    store = LocalObjectStore(Path(root))
    barrier.wait()
    return store.put_if(POINTER, f"p{index}".encode(), etag=etag).value


def test_processes_racing_local_put_if_write_exactly_once(tmp_path: Path) -> None:
    LocalObjectStore(tmp_path).put_if(POINTER, b"v0", etag=None)
    etag = hashlib.sha256(b"v0").hexdigest()
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(4)

    with context.Pool(4) as pool:
        outcomes = pool.starmap(
            _race_local_put_if, [(str(tmp_path), i, etag, barrier) for i in range(4)]
        )

    assert sorted(outcomes) == ["conflict"] * 3 + ["written"]
    written = outcomes.index("written")
    assert LocalObjectStore(tmp_path).get_bytes(POINTER) == f"p{written}".encode()


def test_local_etag_is_the_content_sha256(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    store.put_bytes("a/b", b"content")

    versioned = store.read_versioned("a/b")

    assert versioned is not None
    assert versioned.etag == hashlib.sha256(b"content").hexdigest()


def test_local_store_hides_its_own_files_and_reserves_their_names(
    tmp_path: Path,
) -> None:
    store = LocalObjectStore(tmp_path)
    store.put_if(POINTER, b"v1", etag=None)  # creates a lock file
    (tmp_path / "lines" / ".cj-tmp-leftover").write_bytes(b"partial")

    assert [info.key for info in store.list("")] == [POINTER]
    with pytest.raises(UnsafeObjectKey, match="reserved"):
        store.put_bytes("lines/.cj-tmp-x", b"x")


def test_local_store_refuses_keys_escaping_through_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = LocalObjectStore(tmp_path / "root")
    (tmp_path / "root" / "lines").symlink_to(outside)

    with pytest.raises(UnsafeObjectKey, match="outside the store"):
        store.put_bytes("lines/x", b"x")

    assert list(outside.iterdir()) == []


def test_local_store_url_names_its_root(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")

    assert store.url == f"file://{(tmp_path / 'objects').resolve()}"
