"""Reading CORD annotations, on the shipped samples and on small documents."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from chroma_journal.demo.cord import (
    CORD_LABELS,
    parse_cord,
    read_cord_dir,
    read_cord_file,
    shipped_samples_dir,
)
from chroma_journal.demo.model import image_id_for

SHARED_CORD = Path("/work/shared/data/receipts/cord/train/json")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
WORD_ID = re.compile(rf"IMAGE#{UUID}#RECEIPT#00001#LINE#\d{{5}}#WORD#\d{{5}}")
CORE_LABELS = {
    "PRODUCT_NAME",
    "QUANTITY",
    "UNIT_PRICE",
    "LINE_TOTAL",
    "SUBTOTAL",
    "TAX",
    "DISCOUNT",
    "GRAND_TOTAL",
    "CHANGE",
    "PAYMENT_METHOD",
}


def _word(text: str, x: int, y: int, row: int, *, is_key: int = 0) -> dict[str, Any]:
    quad = {
        "x1": x,
        "y1": y,
        "x2": x + 10,
        "y2": y,
        "x3": x + 10,
        "y3": y + 10,
        "x4": x,
        "y4": y + 10,
    }
    return {"text": text, "quad": quad, "row_id": row, "is_key": is_key}


def _document(groups: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    return {
        "meta": {"image_size": {"width": 100, "height": 200}},
        "valid_line": [
            {"category": category, "group_id": 1, "words": words}
            for category, words in groups
        ],
    }


def _raw_counts(path: Path) -> tuple[int, int]:
    """Rows and non-empty words of a CORD file, read without the loader."""
    document = json.loads(path.read_text(encoding="utf-8"))
    words = [
        word
        for group in document["valid_line"]
        for word in group["words"]
        if word["text"].strip()
    ]
    return len({word["row_id"] for word in words}), len(words)


def test_shipped_samples_are_the_first_hundred_train_receipts() -> None:
    names = sorted(path.name for path in shipped_samples_dir().glob("*.json"))

    assert names == [f"receipt_{number:05d}.json" for number in range(100)]


@pytest.mark.skipif(not SHARED_CORD.is_dir(), reason="shared CORD data not present")
def test_shipped_samples_are_unmodified_copies() -> None:
    for path in shipped_samples_dir().glob("*.json"):
        assert path.read_bytes() == (SHARED_CORD / path.name).read_bytes()


def test_shipped_samples_carry_their_attribution() -> None:
    readme = (shipped_samples_dir() / "README.md").read_text(encoding="utf-8")

    assert "CC BY 4.0" in readme
    assert "https://creativecommons.org/licenses/by/4.0/" in readme
    assert "CORD: A Consolidated Receipt Dataset for Post-OCR Parsing" in readme


def test_every_shipped_receipt_has_one_line_per_row_and_every_word() -> None:
    for path in sorted(shipped_samples_dir().glob("*.json")):
        receipt = read_cord_file(path)
        rows, words = _raw_counts(path)

        assert len(receipt.lines) == rows, path.name
        assert sum(len(line.words) for line in receipt.lines) == words, path.name


def test_shipped_samples_hold_805_lines_and_2357_words() -> None:
    receipts = list(read_cord_dir(shipped_samples_dir()))

    assert len(receipts) == 100
    assert sum(len(receipt.lines) for receipt in receipts) == 805
    assert sum(len(line.words) for r in receipts for line in r.lines) == 2357


def test_record_ids_follow_the_receipts_model() -> None:
    receipt = read_cord_file(shipped_samples_dir() / "receipt_00000.json")
    line = receipt.lines[0]

    assert receipt.word_record_id(line, line.words[0]).endswith(
        "#RECEIPT#00001#LINE#00001#WORD#00001"
    )
    for line in receipt.lines:
        for word in line.words:
            assert WORD_ID.fullmatch(receipt.word_record_id(line, word))


def test_image_id_is_a_stable_uuid_of_the_file_name() -> None:
    receipt = read_cord_file(shipped_samples_dir() / "receipt_00001.json")

    assert receipt.image_id == image_id_for("cord", "receipt_00001")
    assert uuid.UUID(receipt.image_id).version == 5
    assert receipt.image_id != image_id_for("cord", "receipt_00002")


def test_metadata_values_are_scalars_within_the_page() -> None:
    for receipt in read_cord_dir(shipped_samples_dir(), limit=10):
        for line in receipt.lines:
            records = [receipt.line_metadata(line)] + [
                receipt.word_metadata(line, word) for word in line.words
            ]
            for metadata in records:
                assert all(
                    isinstance(value, str | int | float | bool)
                    for value in metadata.values()
                )
                assert 0.0 <= float(metadata["x"]) <= 1.0
                assert float(metadata["x"]) + float(metadata["width"]) <= 1.0 + 1e-6


def test_lines_are_ordered_top_down_and_words_left_to_right() -> None:
    document = _document(
        [
            ("menu.price", [_word("9,000", 80, 50, 7)]),
            ("menu.nm", [_word("Tea", 30, 50, 7), _word("Hot", 10, 52, 7)]),
            ("total.total_price", [_word("9,000", 80, 10, 3)]),
        ]
    )

    receipt = parse_cord(document, name="receipt_x")

    assert [line.text for line in receipt.lines] == ["9,000", "Hot Tea 9,000"]
    assert [line.line_id for line in receipt.lines] == [1, 2]
    assert [word.word_id for word in receipt.lines[1].words] == [1, 2, 3]


def test_categories_map_to_core_labels_and_key_words_stay_unlabelled() -> None:
    document = _document(
        [
            ("menu.nm", [_word("Tea", 10, 10, 1)]),
            ("menu.num", [_word("12", 0, 10, 1)]),
            ("total.total_price", [_word("TOTAL", 10, 30, 2, is_key=1)]),
            ("total.total_price", [_word("9,000", 60, 30, 2)]),
            ("total.cashprice", [_word("10,000", 60, 50, 3)]),
        ]
    )

    receipt = parse_cord(document, name="receipt_x")

    labels = [[word.label for word in line.words] for line in receipt.lines]
    assert labels == [[None, "PRODUCT_NAME"], [None, "GRAND_TOTAL"], ["PAYMENT_METHOD"]]


def test_label_mapping_uses_only_core_labels() -> None:
    assert set(CORD_LABELS.values()) <= CORE_LABELS
    assert CORD_LABELS["menu.price"] == "LINE_TOTAL"
    assert CORD_LABELS["sub_total.tax_price"] == "TAX"
    assert CORD_LABELS["total.changeprice"] == "CHANGE"


def test_empty_words_are_skipped() -> None:
    document = _document(
        [
            ("menu.nm", [_word("Tea", 10, 10, 1), _word(" ", 40, 10, 1)]),
            ("menu.etc", [_word("", 10, 40, 2)]),
        ]
    )

    receipt = parse_cord(document, name="receipt_x")

    assert [line.text for line in receipt.lines] == ["Tea"]


@pytest.mark.skipif(not SHARED_CORD.is_dir(), reason="shared CORD data not present")
def test_the_dataset_word_with_empty_text_is_skipped() -> None:
    path = SHARED_CORD / "receipt_00253.json"
    receipt = read_cord_file(path)

    assert sum(len(line.words) for line in receipt.lines) == _raw_counts(path)[1]
    assert all(word.text for line in receipt.lines for word in line.words)


def test_zero_image_size_falls_back_to_the_extent_of_the_words() -> None:
    document = _document([("menu.nm", [_word("Tea", 40, 90, 1)])])
    document["meta"]["image_size"] = {"width": 0, "height": 0}

    box = parse_cord(document, name="receipt_x").lines[0].words[0].box

    assert (box.x, box.y, box.width, box.height) == pytest.approx((0.8, 0.9, 0.2, 0.1))


def test_dataset_root_layout_is_accepted(tmp_path: Path) -> None:
    nested = tmp_path / "train" / "json"
    nested.mkdir(parents=True)
    source = shipped_samples_dir() / "receipt_00003.json"
    (nested / source.name).write_bytes(source.read_bytes())

    assert [receipt.name for receipt in read_cord_dir(tmp_path)] == ["receipt_00003"]
