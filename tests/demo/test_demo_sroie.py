"""Reading SROIE box and entities files (fixtures written by the tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chroma_journal.demo.sroie import (
    parse_box_text,
    read_sroie_dir,
    read_sroie_receipt,
)

SHARED_SROIE = Path("/work/shared/data/receipts/sroie")

BOX_TEXT = (
    "10,0,110,0,110,20,10,20,SHOP ONE SDN BHD\r\n"
    "10,30,50,30,50,50,10,50,TOTAL: 1,234.00\r\n"
    "\r\n"
    "0,180,200,180,200,200,0,200,THANK YOU\r\n"
)


def _write_receipt(
    root: Path, name: str, box: str, entities: dict[str, str] | None
) -> None:
    (root / "box").mkdir(parents=True, exist_ok=True)
    (root / "entities").mkdir(parents=True, exist_ok=True)
    (root / "box" / f"{name}.txt").write_bytes(box.encode())
    if entities is not None:
        (root / "entities" / f"{name}.txt").write_text(json.dumps(entities))


def test_box_rows_split_on_the_first_eight_commas_only() -> None:
    rows = parse_box_text(BOX_TEXT)

    assert [row.text for row in rows] == [
        "SHOP ONE SDN BHD",
        "TOTAL: 1,234.00",
        "THANK YOU",
    ]


def test_malformed_rows_are_skipped() -> None:
    rows = parse_box_text("1,2,3,TOO SHORT\na,b,c,d,e,f,g,h,NOT NUMBERS\n")

    assert rows == []


def test_receipt_has_one_line_per_box_row_and_words_per_token(tmp_path: Path) -> None:
    _write_receipt(tmp_path, "X001", BOX_TEXT, {"company": "SHOP ONE"})

    (receipt,) = read_sroie_dir(tmp_path)

    assert [line.line_id for line in receipt.lines] == [1, 2, 3]
    assert [word.text for word in receipt.lines[1].words] == ["TOTAL:", "1,234.00"]
    assert receipt.lines[0].text == "SHOP ONE SDN BHD"
    assert receipt.word_record_id(receipt.lines[2], receipt.lines[2].words[1]) == (
        f"IMAGE#{receipt.image_id}#RECEIPT#00001#LINE#00003#WORD#00002"
    )


def test_word_positions_share_the_line_box_by_characters(tmp_path: Path) -> None:
    _write_receipt(tmp_path, "X001", BOX_TEXT, None)

    (receipt,) = read_sroie_dir(tmp_path)
    thank, you = receipt.lines[2].words

    # "THANK YOU" spans x 0..200 of a receipt 200 wide: 5 + 1 + 3 characters.
    assert thank.box.x == pytest.approx(0.0)
    assert thank.box.width == pytest.approx(5 / 9)
    assert you.box.x == pytest.approx(6 / 9)
    assert you.box.x + you.box.width == pytest.approx(1.0)
    assert thank.box.y == pytest.approx(0.9)
    assert thank.box.height == pytest.approx(0.1)


def test_company_and_address_become_merchant_metadata(tmp_path: Path) -> None:
    entities = {
        "company": " SHOP ONE SDN BHD ",
        "date": "25/12/2018",
        "address": "NO. 1, JALAN SATU",
        "total": "9.00",
    }
    _write_receipt(tmp_path, "X001", BOX_TEXT, entities)

    (receipt,) = read_sroie_dir(tmp_path)

    assert receipt.merchant == {
        "merchant_name": "SHOP ONE SDN BHD",
        "address": "NO. 1, JALAN SATU",
    }


def test_missing_address_or_entities_file_is_tolerated(tmp_path: Path) -> None:
    _write_receipt(tmp_path, "X001", BOX_TEXT, {"company": "SHOP ONE"})
    _write_receipt(tmp_path, "X002", BOX_TEXT, None)

    first, second = read_sroie_dir(tmp_path)

    assert first.merchant == {"merchant_name": "SHOP ONE"}
    assert second.merchant == {}


def test_limit_and_train_folder_layout(tmp_path: Path) -> None:
    for name in ("X003", "X001", "X002"):
        _write_receipt(tmp_path / "train", name, BOX_TEXT, None)

    names = [receipt.name for receipt in read_sroie_dir(tmp_path, limit=2)]

    assert names == ["X001", "X002"]


@pytest.mark.skipif(not SHARED_SROIE.is_dir(), reason="shared SROIE data not present")
def test_shared_sroie_receipts_read_with_merchants() -> None:
    receipts = list(read_sroie_dir(SHARED_SROIE, limit=20))

    assert len(receipts) == 20
    assert all(receipt.lines for receipt in receipts)
    assert all("merchant_name" in receipt.merchant for receipt in receipts)


@pytest.mark.skipif(not SHARED_SROIE.is_dir(), reason="shared SROIE data not present")
def test_shared_sroie_receipt_without_address_has_no_address() -> None:
    train = SHARED_SROIE / "train"
    name = "X51005663280.txt"

    receipt = read_sroie_receipt(train / "box" / name, train / "entities" / name)

    assert receipt.lines
    assert "merchant_name" in receipt.merchant
    assert "address" not in receipt.merchant
