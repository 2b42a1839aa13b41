"""The working copy's record hash file: written when the copy is released
and at most once a minute otherwise; a stale one is never believed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pipeline_rig import IMAGE, Rig, word_records

from journal.events import LabelUpdate
from pipeline.digest import RecordHashes


def hash_file(rig: Rig) -> Path:
    return rig.staging / "words" / "record_hashes.bin"


def label(word_id: int, status: str) -> LabelUpdate:
    return LabelUpdate(
        image_id=IMAGE,
        receipt_id=1,
        line_id=1,
        word_id=word_id,
        valid_labels=["TOTAL"],
        status=status,
    )


def live_digest(rig: Rig) -> str:
    manifest = rig.shared.live_manifest("words")
    assert manifest is not None
    return manifest.digest


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts full scans of a collection's record hashes."""
    calls: list[int] = []
    real = RecordHashes.scan.__func__  # type: ignore[attr-defined]

    def counting(cls: type[RecordHashes], collection: object) -> RecordHashes:
        calls.append(1)
        return real(cls, collection)  # type: ignore[no-any-return]

    monkeypatch.setattr(RecordHashes, "scan", classmethod(counting))
    return calls


def test_the_file_is_saved_by_the_first_batch_and_on_release_not_every_batch(
    rig: Rig,
) -> None:
    consumer = rig.consumer()
    rig.delta("words", word_records(IMAGE, 1))
    consumer.catch_up()
    first = hash_file(rig).read_bytes()
    assert RecordHashes.load(hash_file(rig)).digest().hexdigest == live_digest(rig)

    rig.append("words", label(1, "VALID"))
    consumer.catch_up()
    assert hash_file(rig).read_bytes() == first  # within the minute: not saved

    consumer.close()
    assert RecordHashes.load(hash_file(rig)).digest().hexdigest == live_digest(rig)


def test_a_restarted_consumer_reuses_the_released_file(
    rig: Rig, scans: list[int]
) -> None:
    first = rig.consumer("consumer-a")
    rig.delta("words", word_records(IMAGE, 1))
    first.catch_up()
    rig.append("words", label(1, "VALID"))
    first.catch_up()
    first.close()
    scans.clear()

    rig.append("words", label(2, "INVALID"))
    rig.consumer("consumer-b").catch_up()

    assert scans == []
    assert live_digest(rig) == rig.expected("words").hexdigest


def test_a_stale_file_is_ignored_and_the_records_are_scanned(
    rig: Rig, scans: list[int]
) -> None:
    first = rig.consumer("consumer-a")
    rig.delta("words", word_records(IMAGE, 1))
    first.catch_up()
    shutil.copyfile(hash_file(rig), rig.tmp / "stale.bin")
    rig.append("words", label(1, "VALID"))
    first.catch_up()
    first.close()
    # What a crash between two saves leaves: the file of an older version.
    shutil.copyfile(rig.tmp / "stale.bin", hash_file(rig))
    scans.clear()

    rig.append("words", label(2, "INVALID"))
    rig.consumer("consumer-b").catch_up()

    assert scans == [1]
    assert live_digest(rig) == rig.expected("words").hexdigest
