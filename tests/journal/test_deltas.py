"""Deltas: writing, verifying, safely unpacking and reading them back."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from journal.deltas import (
    DeltaLimits,
    DeltaRecords,
    fetch_delta,
    iter_delta_records,
    write_delta,
)
from journal.errors import (
    DeltaError,
    DeltaIntegrityError,
    InvalidCollectionName,
    UnsafeArchiveError,
)
from journal.events import DeltaMerge
from journal.local_store import LocalObjectStore

EVIL_KEY = "lines/deltas/evil/delta.tar.gz"


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The parent of every ``dest``: anything written outside dest lands here."""
    return tmp_path / "work"


def make_records(count: int, dim: int = 5, seed: int = 0) -> DeltaRecords:
    """Records with every metadata type.

    Float metadata are quarters: ChromaDB returns some other floats off by
    an ulp or two (90.33333333333333 comes back as 90.33333333333331).
    """
    rng = np.random.default_rng(seed)
    embeddings = rng.standard_normal((count, dim)).astype(np.float32)
    embeddings[0, 0] = np.float32(1e-30)  # survives only an exact round trip
    metadatas: list[dict[str, str | int | float | bool]] = [
        {"image_id": f"img-{i}", "line_id": i, "score": i / 4, "valid": i % 2 == 0}
        for i in range(count)
    ]
    metadatas[1] = {}
    return DeltaRecords(
        ids=[f"IMAGE#img#RECEIPT#00001#LINE#{i:05d}" for i in range(count)],
        embeddings=embeddings,
        documents=[f"line {i} - Käse €" for i in range(count)],
        metadatas=metadatas,
    )


def read_all(delta_dir: Path, page_size: int = 5000) -> dict[str, Any]:
    """id -> (embedding, document, metadata) over every page."""
    found: dict[str, Any] = {}
    for page in iter_delta_records(delta_dir, page_size=page_size):
        assert page.embeddings.dtype == np.float32
        for i, record_id in enumerate(page.ids):
            found[record_id] = (
                page.embeddings[i],
                page.documents[i],
                page.metadatas[i],
            )
    return found


def assert_same_records(found: dict[str, Any], records: DeltaRecords) -> None:
    assert sorted(found) == sorted(records.ids)
    for i, record_id in enumerate(records.ids):
        embedding, document, metadata = found[record_id]
        assert embedding.tobytes() == records.embeddings[i].tobytes()
        assert document == records.documents[i]
        assert metadata == records.metadatas[i]


# -- round trip ---------------------------------------------------------------


def test_written_delta_reads_back_exactly(store: LocalObjectStore, work: Path) -> None:
    records = make_records(12)

    payload = write_delta(store, "lines", records, delta_id="d1")
    delta_dir = fetch_delta(store, payload, work / "dest")
    pages = [len(page) for page in iter_delta_records(delta_dir, page_size=5)]

    assert payload.key == "lines/deltas/d1/delta.tar.gz"
    assert (payload.records, payload.dimension) == (12, 5)
    assert payload.sha256 == hashlib.sha256(store.get_bytes(payload.key)).hexdigest()
    assert (delta_dir / "chroma.sqlite3").is_file()
    assert pages == [5, 5, 2]
    assert_same_records(read_all(delta_dir, page_size=5), records)


def test_delta_larger_than_one_chroma_call_round_trips(
    store: LocalObjectStore, work: Path
) -> None:
    records = make_records(5500, dim=3)  # above ChromaDB's 5461 per add

    payload = write_delta(store, "words", records)
    delta_dir = fetch_delta(store, payload, work / "dest")

    assert payload.key.startswith("words/deltas/")
    assert len(payload.key.split("/")[2]) == 26  # a ULID
    assert_same_records(read_all(delta_dir), records)


def test_empty_delta_round_trips(store: LocalObjectStore, work: Path) -> None:
    records = DeltaRecords(
        ids=[], embeddings=np.zeros((0, 4), np.float32), documents=[], metadatas=[]
    )

    payload = write_delta(store, "lines", records)
    delta_dir = fetch_delta(store, payload, work / "dest")

    assert (payload.records, payload.dimension) == (0, None)
    assert list(iter_delta_records(delta_dir)) == []


def test_write_delta_refuses_bad_collection_and_delta_id(
    store: LocalObjectStore,
) -> None:
    with pytest.raises(InvalidCollectionName):
        write_delta(store, "../lines", make_records(2))
    with pytest.raises(DeltaError, match="may not contain"):
        write_delta(store, "lines", make_records(2), delta_id="a/b")

    assert store.list("") == []


# -- record validation --------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ids": ["a"]}, "unequal lengths"),
        ({"ids": ["a", "a"]}, "ids repeat"),
        ({"ids": ["a", ""]}, "non-empty strings"),
        ({"embeddings": np.zeros((2, 3), np.float64)}, "must be float32"),
        ({"embeddings": np.zeros(2, np.float32)}, "2-D"),
        ({"embeddings": np.array([[0.0], [np.nan]], np.float32)}, "rows [1]"),
        ({"embeddings": np.array([[np.inf], [0.0]], np.float32)}, "NaN or infinity"),
        ({"metadatas": [{}, {"k": [1]}]}, "metadata at row 1"),
        ({"metadatas": [{}, {"k": None}]}, "metadata at row 1"),
    ],
)
def test_invalid_records_are_refused_naming_the_problem(
    change: dict[str, Any], message: str
) -> None:
    fields: dict[str, Any] = {
        "ids": ["a", "b"],
        "embeddings": np.zeros((2, 3), np.float32),
        "documents": ["x", "y"],
        "metadatas": [{}, {}],
    }
    fields.update(change)

    with pytest.raises(DeltaError) as caught:
        DeltaRecords(**fields)

    assert message in str(caught.value)


# -- integrity ----------------------------------------------------------------


def test_tampered_archive_is_refused_before_extraction(
    store: LocalObjectStore, work: Path
) -> None:
    payload = write_delta(store, "lines", make_records(3), delta_id="d1")
    tampered = bytearray(store.get_bytes(payload.key))
    tampered[len(tampered) // 2] ^= 0xFF
    store.put_bytes(payload.key, bytes(tampered))

    with pytest.raises(DeltaIntegrityError) as caught:
        fetch_delta(store, payload, work / "dest")

    assert caught.value.key == payload.key
    assert caught.value.expected == payload.sha256
    assert caught.value.actual == hashlib.sha256(tampered).hexdigest()
    assert list(work.iterdir()) == []


def test_swapped_archive_is_refused(store: LocalObjectStore, work: Path) -> None:
    first = write_delta(store, "lines", make_records(3, seed=1), delta_id="d1")
    second = write_delta(store, "lines", make_records(3, seed=2), delta_id="d2")
    swapped = first.model_copy(update={"key": second.key})

    with pytest.raises(DeltaIntegrityError):
        fetch_delta(store, swapped, work / "dest")

    assert list(work.iterdir()) == []


def test_fetch_refuses_a_non_empty_destination(
    store: LocalObjectStore, work: Path
) -> None:
    payload = write_delta(store, "lines", make_records(2))
    (work / "dest").mkdir(parents=True)
    (work / "dest" / "old").write_text("x")

    with pytest.raises(DeltaError, match="not empty"):
        fetch_delta(store, payload, work / "dest")


def test_reading_a_directory_without_a_delta_fails(tmp_path: Path) -> None:
    with pytest.raises(DeltaError, match=r"no chroma\.sqlite3"):
        list(iter_delta_records(tmp_path))


# -- unsafe archives ----------------------------------------------------------


def regular(name: str, data: bytes = b"data") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def upload_archive(
    store: LocalObjectStore, members: list[tuple[tarfile.TarInfo, bytes | None]]
) -> DeltaMerge:
    """An archive with a correct sha256, so only the member checks stop it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, None if data is None else io.BytesIO(data))
    raw = buffer.getvalue()
    store.put_bytes(EVIL_KEY, raw)
    return DeltaMerge(key=EVIL_KEY, sha256=hashlib.sha256(raw).hexdigest(), records=1)


UnsafeCase = Callable[[Path], tuple[list[tuple[tarfile.TarInfo, bytes | None]], str]]

UNSAFE_CASES: dict[str, UnsafeCase] = {
    "parent": lambda work: ([regular("../evil")], "../evil"),
    "nested-parent": lambda work: ([regular("a/../../evil")], "a/../../evil"),
    "absolute": lambda work: (
        [regular(str(work / "evil"))],
        str(work / "evil"),
    ),
    "symlink": lambda work: (
        [special("link", tarfile.SYMTYPE, str(work / "evil"))],
        "link",
    ),
    "relative-symlink": lambda work: (
        [special("link", tarfile.SYMTYPE, "../evil")],
        "link",
    ),
    "hardlink": lambda work: (
        [special("hard", tarfile.LNKTYPE, "ok.txt")],
        "hard",
    ),
    "fifo": lambda work: ([special("pipe", tarfile.FIFOTYPE)], "pipe"),
    "char-device": lambda work: ([special("null", tarfile.CHRTYPE)], "null"),
    "block-device": lambda work: ([special("disk", tarfile.BLKTYPE)], "disk"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE_CASES))
def test_unsafe_member_is_refused_and_nothing_is_written(
    store: LocalObjectStore, work: Path, case: str
) -> None:
    members, bad_name = UNSAFE_CASES[case](work)
    # A harmless first member: refusing must happen before anything unpacks.
    payload = upload_archive(store, [regular("ok.txt"), *members])

    with pytest.raises(UnsafeArchiveError) as caught:
        fetch_delta(store, payload, work / "dest")

    assert caught.value.member == bad_name
    assert caught.value.key == EVIL_KEY
    assert not (work / "evil").exists()
    assert not (work / "evil").is_symlink()
    assert list(work.iterdir()) == []


def test_archive_with_too_many_members_is_refused(
    store: LocalObjectStore, work: Path
) -> None:
    payload = upload_archive(store, [regular(f"f{i}") for i in range(5)])

    with pytest.raises(UnsafeArchiveError, match="more than 3 members") as caught:
        fetch_delta(store, payload, work / "dest", DeltaLimits(1000, 3))

    assert caught.value.member == "f3"
    assert list(work.iterdir()) == []


def test_member_above_the_size_limit_is_refused(
    store: LocalObjectStore, work: Path
) -> None:
    payload = upload_archive(store, [regular("ok"), regular("big", b"\0" * 200)])

    with pytest.raises(UnsafeArchiveError, match="more than 100 bytes") as caught:
        fetch_delta(store, payload, work / "dest", DeltaLimits(100, 10))

    assert caught.value.member == "big"
    assert list(work.iterdir()) == []


def test_members_together_above_the_size_limit_are_refused(
    store: LocalObjectStore, work: Path
) -> None:
    payload = upload_archive(
        store, [regular("a", b"\0" * 60), regular("b", b"\0" * 60)]
    )

    with pytest.raises(UnsafeArchiveError) as caught:
        fetch_delta(store, payload, work / "dest", DeltaLimits(100, 10))

    assert caught.value.member == "b"
    assert list(work.iterdir()) == []


def test_archive_without_chroma_files_is_refused(
    store: LocalObjectStore, work: Path
) -> None:
    payload = upload_archive(store, [regular("readme.txt")])

    with pytest.raises(DeltaError, match=r"no chroma\.sqlite3"):
        fetch_delta(store, payload, work / "dest")


def test_corrupt_archive_is_a_delta_error(store: LocalObjectStore, work: Path) -> None:
    raw = b"not a gzip stream at all"
    store.put_bytes(EVIL_KEY, raw)
    payload = DeltaMerge(
        key=EVIL_KEY, sha256=hashlib.sha256(raw).hexdigest(), records=1
    )

    with pytest.raises(DeltaError, match="not a readable archive"):
        fetch_delta(store, payload, work / "dest")

    assert list(work.iterdir()) == []
