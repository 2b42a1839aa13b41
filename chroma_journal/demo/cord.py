"""Read CORD v1 receipt annotations into :class:`Receipt` objects.

A CORD file lists ``valid_line`` groups, each with a ``category`` (such as
``menu.price``) and words carrying a 4-point ``quad`` and a ``row_id``. One
physical row mixes categories (count, name and price of one item), so lines
are built by grouping words on ``row_id``, not from ``valid_line``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import structlog

from chroma_journal.demo.model import Box, Line, Receipt, Word, image_id_for

log = structlog.get_logger(__name__)

SOURCE = "cord"

#: CORD categories with a sensible receipt core label. Categories left out
#: (menu.num, sub_total.service_price, total.menuqty_cnt, void_menu.*, the
#: ``etc`` buckets, ...) have no counterpart and leave their words unlabelled.
CORD_LABELS: Mapping[str, str] = {
    "menu.nm": "PRODUCT_NAME",
    "menu.sub_nm": "PRODUCT_NAME",
    "menu.cnt": "QUANTITY",
    "menu.sub_cnt": "QUANTITY",
    "menu.unitprice": "UNIT_PRICE",
    "menu.sub_unitprice": "UNIT_PRICE",
    "menu.price": "LINE_TOTAL",
    "menu.sub_price": "LINE_TOTAL",
    "menu.discountprice": "DISCOUNT",
    "sub_total.subtotal_price": "SUBTOTAL",
    "sub_total.tax_price": "TAX",
    "sub_total.discount_price": "DISCOUNT",
    "total.total_price": "GRAND_TOTAL",
    "total.changeprice": "CHANGE",
    "total.cashprice": "PAYMENT_METHOD",
    "total.creditcardprice": "PAYMENT_METHOD",
    "total.emoneyprice": "PAYMENT_METHOD",
}


@dataclass(frozen=True)
class _RawWord:
    """A word as read, in pixels, before lines are numbered."""

    text: str
    left: float
    top: float
    right: float
    bottom: float
    row_id: int
    category: str
    is_key: bool


def shipped_samples_dir() -> Path:
    """The folder of CORD receipts shipped with the package."""
    return Path(str(resources.files("chroma_journal") / "samples" / "cord"))


def cord_files(directory: Path) -> list[Path]:
    """The receipt files of a CORD folder, sorted by name.

    Accepts the shipped samples folder, a ``json`` folder of the dataset, or
    the dataset root holding ``train/json``.
    """
    nested = directory / "train" / "json"
    folder = nested if nested.is_dir() else directory
    return sorted(folder.glob("*.json"))


def read_cord_dir(directory: Path, limit: int | None = None) -> Iterator[Receipt]:
    """Read the receipts of a folder (see :func:`cord_files`) in name order."""
    files = cord_files(directory)
    for path in files if limit is None else files[:limit]:
        yield read_cord_file(path)


def read_cord_file(path: Path) -> Receipt:
    """Read one CORD annotation file."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return parse_cord(document, name=path.stem)


def parse_cord(document: Mapping[str, Any], *, name: str) -> Receipt:
    """Build a receipt from a parsed CORD document.

    The image id is derived from ``name`` (see :func:`image_id_for`); CORD
    has one receipt per image, so ``receipt_id`` is 1.
    """
    raw = list(_raw_words(document, name))
    width, height = _page_size(document, raw)
    rows: dict[int, list[_RawWord]] = defaultdict(list)
    for word in raw:
        rows[word.row_id].append(word)
    ordered = sorted(rows.values(), key=lambda row: _row_position(row))
    lines = tuple(
        _line(number, row, width, height) for number, row in enumerate(ordered, start=1)
    )
    return Receipt(
        source=SOURCE,
        name=name,
        image_id=image_id_for(SOURCE, name),
        receipt_id=1,
        lines=lines,
    )


def _raw_words(document: Mapping[str, Any], name: str) -> Iterator[_RawWord]:
    for group in document.get("valid_line", []):
        category = str(group.get("category", ""))
        for word in group.get("words", []):
            text = str(word.get("text", "")).strip()
            if not text:
                log.debug("cord_empty_word_skipped", receipt=name, category=category)
                continue
            quad = word["quad"]
            xs = [float(quad[f"x{corner}"]) for corner in range(1, 5)]
            ys = [float(quad[f"y{corner}"]) for corner in range(1, 5)]
            yield _RawWord(
                text=text,
                left=min(xs),
                top=min(ys),
                right=max(xs),
                bottom=max(ys),
                row_id=int(word["row_id"]),
                category=category,
                is_key=bool(word.get("is_key", 0)),
            )


def _page_size(
    document: Mapping[str, Any], words: list[_RawWord]
) -> tuple[float, float]:
    """The image size, or the extent of the words when it is missing or 0."""
    size = document.get("meta", {}).get("image_size", {})
    width = float(size.get("width") or 0)
    height = float(size.get("height") or 0)
    if width <= 0:
        width = max((word.right for word in words), default=0.0) or 1.0
    if height <= 0:
        height = max((word.bottom for word in words), default=0.0) or 1.0
    return width, height


def _row_position(row: list[_RawWord]) -> tuple[float, float, int]:
    return (
        min(word.top for word in row),
        min(word.left for word in row),
        row[0].row_id,
    )


def _line(number: int, row: list[_RawWord], width: float, height: float) -> Line:
    ordered = sorted(row, key=lambda word: (word.left, word.top))
    words = tuple(
        _word(position, raw, width, height)
        for position, raw in enumerate(ordered, start=1)
    )
    return Line(
        line_id=number, box=Box.union([word.box for word in words]), words=words
    )


def _word(position: int, raw: _RawWord, width: float, height: float) -> Word:
    # Key words ("TOTAL", "CASH") share the category of the value they
    # introduce; only the value itself carries the label.
    label = None if raw.is_key else CORD_LABELS.get(raw.category)
    return Word(
        word_id=position,
        text=raw.text,
        box=Box.from_corners(
            raw.left / width,
            raw.top / height,
            raw.right / width,
            raw.bottom / height,
        ),
        category=raw.category,
        label=label,
    )
