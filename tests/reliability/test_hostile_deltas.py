"""Hostile and broken deltas, end to end through the consumer.

Each hostile delta is uploaded with its correct sha256 (so only the archive
checks can stop it) and appended to a collection of its own, between a good
delta and a good metadata update. The consumer must stop that collection
at the hostile seq with an error that names the problem, write nothing
outside its scratch directory, keep the later event in the journal, and
carry on with every other collection. The archive limits come from the
settings ``MAX_DELTA_BYTES`` and ``MAX_DELTA_MEMBERS``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import sqlite3
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from chroma_journal.settings import Settings
from journal.deltas import DeltaRecords, _build_chroma_dir
from journal.errors import DeltaError
from journal.events import DeltaMerge, MetadataUpdate
from pipeline.config import ConsumerConfig
from tests.reliability.reliability_rig import (
    IMAGE,
    World,
    assert_version_complete,
    local_world,
    stopped_at,
    word_records,
)

MAX_BYTES = 1024 * 1024
MAX_MEMBERS = 50
TOKEN = uuid.uuid4().hex[:12]
ESCAPE = f"cj-escape-{TOKEN}.txt"
ABSOLUTE = Path(f"/tmp/cj-absolute-{TOKEN}.txt")

Member = tuple[tarfile.TarInfo, bytes | None]


def file_member(name: str, data: bytes = b"x") -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special_member(name: str, kind: bytes, target: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def tar_gz(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def chroma_dir_archive(tmp: Path, records: DeltaRecords, tamper: bool = False) -> bytes:
    """A real delta archive; ``tamper`` writes NaN into the stored vectors
    behind ChromaDB's back (its API refuses NaN)."""
    directory = tmp / f"chroma-{uuid.uuid4().hex[:8]}"
    _build_chroma_dir(directory, records)
    if tamper:
        nan = np.full(records.dimension, np.nan, dtype=np.float32).tobytes()
        with sqlite3.connect(directory / "chroma.sqlite3") as db:
            db.execute("UPDATE embeddings_queue SET vector = ?", (nan,))
    members = [
        file_member(path.relative_to(directory).as_posix(), path.read_bytes())
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    ]
    return tar_gz(members)


def archives(tmp: Path) -> dict[str, tuple[bytes, str]]:
    """Hostile archive -> (bytes, what the error must say)."""
    zeros = b"\0" * (16 * MAX_BYTES)
    return {
        "traversal": (tar_gz([file_member(f"../{ESCAPE}")]), "leaves the target"),
        "nested-traversal": (
            tar_gz([file_member(f"a/../../{ESCAPE}")]),
            "leaves the target",
        ),
        "absolute": (tar_gz([file_member(str(ABSOLUTE))]), "absolute path"),
        "backslash": (tar_gz([file_member(f"..\\{ESCAPE}")]), "leaves the target"),
        "symlink": (
            tar_gz([special_member("chroma.sqlite3", tarfile.SYMTYPE, "/etc/passwd")]),
            "symbolic link",
        ),
        "symlinked-dir": (
            tar_gz(
                [
                    special_member("sub", tarfile.SYMTYPE, "/tmp"),
                    file_member(f"sub/{ESCAPE}"),
                ]
            ),
            "symbolic link",
        ),
        "hardlink": (
            tar_gz([special_member("h", tarfile.LNKTYPE, "/etc/passwd")]),
            "hard link",
        ),
        "char-device": (
            tar_gz([special_member("null", tarfile.CHRTYPE)]),
            "device or fifo",
        ),
        "block-device": (
            tar_gz([special_member("disk", tarfile.BLKTYPE)]),
            "device or fifo",
        ),
        "fifo": (tar_gz([special_member("pipe", tarfile.FIFOTYPE)]), "device or fifo"),
        "many-members": (
            tar_gz([file_member(f"f{i}") for i in range(5000)]),
            f"more than {MAX_MEMBERS} members",
        ),
        "bomb": (tar_gz([file_member("chroma.sqlite3", zeros)]), "more than"),
        "spread-bomb": (
            tar_gz([file_member(f"p{i}", b"\0" * 65536) for i in range(40)]),
            "more than",
        ),
        "not-an-archive": (b"\x89PNG not a tar at all" * 10, "not a readable"),
        "truncated": (
            chroma_dir_archive(tmp, word_records(1))[:2000],
            "not a readable",
        ),
        "no-chroma-file": (tar_gz([file_member("readme.txt")]), "holds no"),
        "garbage-chroma-file": (
            tar_gz([file_member("chroma.sqlite3", b"garbage" * 100)]),
            "ChromaDB failed",
        ),
        "nan-vectors": (
            chroma_dir_archive(tmp, word_records(1, seed=3), tamper=True),
            "NaN",
        ),
        "wrong-dimension": (
            chroma_dir_archive(tmp, word_records(1, seed=4, dim=16)),
            "dimension",
        ),
    }


@pytest.fixture
def limited_config(monkeypatch: pytest.MonkeyPatch) -> ConsumerConfig:
    monkeypatch.setenv("MAX_DELTA_BYTES", str(MAX_BYTES))
    monkeypatch.setenv("MAX_DELTA_MEMBERS", str(MAX_MEMBERS))
    settings = Settings()
    return dataclasses.replace(
        ConsumerConfig.from_settings(settings),
        group_commit_max_seconds=0,
        retry_wait_seconds=0,
        apply_attempts=2,
    )


@pytest.fixture
def limited_world(tmp_path: Path, limited_config: ConsumerConfig) -> Iterator[World]:
    built = local_world(tmp_path / "world", config=limited_config)
    yield built
    built.close()


def escaped(tmp_path: Path) -> list[str]:
    found = [str(p) for p in tmp_path.parent.rglob(f"*{TOKEN}*")]
    found += [str(p) for p in Path("/tmp").glob(f"*{TOKEN}*")]
    return found + ([str(ABSOLUTE)] if ABSOLUTE.exists() else [])


@pytest.mark.slow
def test_hostile_deltas_stop_only_their_collection_and_write_nothing_outside(
    limited_world: World, tmp_path: Path, hostile_tally: dict[str, int]
) -> None:
    world = limited_world
    hostile = archives(tmp_path)
    names = {kind: f"evil-{index:02d}" for index, kind in enumerate(hostile)}
    for kind, (data, _) in hostile.items():
        collection = names[kind]
        world.delta(collection, word_records(1))
        key = f"{collection}/deltas/{kind}/delta.tar.gz"
        world.objects.put_bytes(key, data)
        sha = hashlib.sha256(data).hexdigest()
        world.append(collection, DeltaMerge(key=key, sha256=sha, records=6))
        world.append(
            collection,
            MetadataUpdate(image_id=IMAGE, receipt_id=1, changes={"after": 1}),
        )
    world.delta("good-after", word_records(2))
    consumer = world.consumer()

    consumer.catch_up()

    problems = {}
    for kind, (_, says) in hostile.items():
        collection = names[kind]
        blocked = consumer.blocked().get(collection)
        if (
            stopped_at(consumer, world.journal, collection) != 2
            or world.applied(collection) != 1
            or blocked is None
            or says not in blocked.error
        ):
            problems[kind] = blocked.error if blocked else "not blocked"
        assert world.journal.head(collection) >= 3  # the event after it is kept
        hostile_tally[f"delta archive: {kind}"] = 1
    assert not problems, problems
    assert world.applied("good-after") == 1
    assert_version_complete(world.shared, "good-after")
    assert not escaped(tmp_path)
    scratch = list((world.staging / "consumer-a").glob("*/scratch/*"))
    assert not scratch, scratch


def test_a_delta_with_a_wrong_sha256_or_key_is_refused(
    limited_world: World, hostile_tally: dict[str, int]
) -> None:
    world = limited_world
    good = world.delta("shas", word_records(1)).payload
    assert isinstance(good, DeltaMerge)
    cases: dict[str, DeltaMerge] = {
        "wrong sha256": good.model_copy(update={"sha256": "0" * 64}),
        "key outside the store": good.model_copy(update={"key": "../../etc/passwd"}),
        "absolute key": good.model_copy(update={"key": "/etc/passwd"}),
        "missing object": good.model_copy(update={"key": "shas/deltas/none/x.tgz"}),
    }
    consumer = world.consumer()
    for index, (kind, payload) in enumerate(cases.items()):
        collection = f"key-{index}"
        world.delta(collection, word_records(2))
        world.append(collection, payload)
        hostile_tally[f"delta reference: {kind}"] = 1
    consumer.catch_up()

    for index in range(len(cases)):
        assert stopped_at(consumer, world.journal, f"key-{index}") == 2
        assert world.applied(f"key-{index}") == 1
    assert world.applied("shas") == 1


def test_records_a_producer_cannot_build(hostile_tally: dict[str, int]) -> None:
    ids = ["a", "b"]
    good = np.ones((2, 4), dtype=np.float32)
    docs = ["x", "y"]
    meta: list[dict[str, str | int | float | bool]] = [{"k": 1}, {"k": 2}]
    cases: dict[str, Callable[[], DeltaRecords]] = {
        "NaN embedding": lambda: DeltaRecords(ids, _with(good, np.nan), docs, meta),
        "infinite embedding": lambda: DeltaRecords(
            ids, _with(good, np.inf), docs, meta
        ),
        "float64 embeddings": lambda: DeltaRecords(
            ids, good.astype(np.float64), docs, meta
        ),
        "1-D embeddings": lambda: DeltaRecords(ids, good[0], docs, meta),
        "repeated ids": lambda: DeltaRecords(["a", "a"], good, docs, meta),
        "empty id": lambda: DeltaRecords(["", "b"], good, docs, meta),
        "nested metadata": lambda: DeltaRecords(
            ids,
            good,
            docs,
            [{"k": {"x": 1}}, {"k": 2}],  # type: ignore[dict-item]
        ),
        "list metadata": lambda: DeltaRecords(
            ids,
            good,
            docs,
            [{"k": [1]}, {"k": 2}],  # type: ignore[dict-item]
        ),
        "NaN metadata": lambda: DeltaRecords(
            ids, good, docs, [{"k": float("nan")}, {"k": 2}]
        ),
        "unequal lengths": lambda: DeltaRecords(ids, good, ["x"], meta),
    }
    for kind, build in cases.items():
        with pytest.raises(DeltaError):
            build()
        hostile_tally[f"delta records: {kind}"] = 1


def _with(array: np.ndarray, value: float) -> np.ndarray:
    changed = array.copy()
    changed[1, 2] = value
    return changed
