"""Hashing copies: the small-file path and the kernel copy with a hashing
thread give the same result."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from pipeline import files
from pipeline.files import Hashed, TornCopyError, copy_hashed

SMALL = 100_000
LARGE = files._PARALLEL_MIN_BYTES + 12_345


@pytest.mark.parametrize("size", [0, SMALL, LARGE], ids=["empty", "small", "large"])
def test_a_copy_has_the_source_bytes_hash_and_mode(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    source = tmp_path / "source"
    source.write_bytes(data)

    hashed = copy_hashed(source, tmp_path / "copy", mode=0o444)

    assert hashed == Hashed(hashlib.sha256(data).hexdigest(), size)
    assert (tmp_path / "copy").read_bytes() == data
    assert stat.S_IMODE((tmp_path / "copy").stat().st_mode) == 0o444


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["small", "large"])
def test_a_copy_never_overwrites(tmp_path: Path, size: int) -> None:
    (tmp_path / "source").write_bytes(os.urandom(size))
    (tmp_path / "copy").write_bytes(b"already here")

    with pytest.raises(FileExistsError):
        copy_hashed(tmp_path / "source", tmp_path / "copy")

    assert (tmp_path / "copy").read_bytes() == b"already here"


def test_a_large_copy_whose_length_differs_from_the_hashed_one_is_torn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    source.write_bytes(os.urandom(LARGE))
    grown = Hashed("0" * 64, LARGE + 4096)  # what a concurrent writer causes
    monkeypatch.setattr(files, "sha256_file", lambda _path: grown)

    with pytest.raises(TornCopyError, match="changed while copied"):
        copy_hashed(source, tmp_path / "copy")
