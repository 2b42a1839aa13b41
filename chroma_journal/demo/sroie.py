"""Read SROIE (ICDAR 2019) receipts from a local copy into :class:`Receipt`.

The dataset carries no licence from its organisers, so the project never
ships it; the loader reads it only from a path the user gives. A receipt is
``box/<name>.txt`` (one OCR line per row: ``x1,y1,...,x4,y4,transcript``)
with ``entities/<name>.txt`` (JSON: company, date, address, total).

SROIE boxes are per line, not per word, and no image size is given: words
are placed by sharing the line's width out by character count, and
coordinates are normalised by the largest coordinate of the receipt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from chroma_journal.demo.model import Box, Line, Receipt, Word, image_id_for

log = structlog.get_logger(__name__)

SOURCE = "sroie"
_COORDINATES = 8

#: Entity fields that become receipt metadata, and the metadata key of each.
MERCHANT_FIELDS = {"company": "merchant_name", "address": "address"}


@dataclass(frozen=True)
class _BoxLine:
    """One row of a box file, in pixels."""

    text: str
    left: float
    top: float
    right: float
    bottom: float


def sroie_dir(directory: Path) -> Path:
    """The folder holding ``box/`` and ``entities/`` (the root or its ``train``)."""
    nested = directory / "train"
    return nested if (nested / "box").is_dir() else directory


def read_sroie_dir(directory: Path, limit: int | None = None) -> Iterator[Receipt]:
    """Read every receipt that has a box file, in name order."""
    root = sroie_dir(directory)
    files = sorted((root / "box").glob("*.txt"))
    for path in files if limit is None else files[:limit]:
        yield read_sroie_receipt(path, root / "entities" / path.name)


def read_sroie_receipt(box_path: Path, entities_path: Path) -> Receipt:
    """Read one receipt; a missing entities file gives no merchant metadata."""
    name = box_path.stem
    rows = parse_box_text(box_path.read_text(encoding="utf-8", errors="replace"))
    return Receipt(
        source=SOURCE,
        name=name,
        image_id=image_id_for(SOURCE, name),
        receipt_id=1,
        lines=_lines(rows),
        merchant=_merchant(entities_path),
    )


def parse_box_text(text: str) -> list[_BoxLine]:
    """Parse a box file; blank and malformed rows are skipped.

    The transcript may itself contain commas, so a row is split on its first
    eight commas only. ``splitlines`` also takes care of CRLF files.
    """
    rows = []
    for number, raw in enumerate(text.splitlines(), start=1):
        parts = raw.split(",", _COORDINATES)
        if len(parts) <= _COORDINATES or not parts[_COORDINATES].strip():
            if raw.strip():
                log.debug("sroie_row_skipped", row=number)
            continue
        try:
            values = [float(part) for part in parts[:_COORDINATES]]
        except ValueError:
            log.debug("sroie_row_skipped", row=number)
            continue
        xs, ys = values[0::2], values[1::2]
        rows.append(
            _BoxLine(
                text=parts[_COORDINATES].strip(),
                left=min(xs),
                top=min(ys),
                right=max(xs),
                bottom=max(ys),
            )
        )
    return rows


def _lines(rows: list[_BoxLine]) -> tuple[Line, ...]:
    width = max((row.right for row in rows), default=0.0) or 1.0
    height = max((row.bottom for row in rows), default=0.0) or 1.0
    return tuple(
        _line(number, row, width, height) for number, row in enumerate(rows, start=1)
    )


def _line(number: int, row: _BoxLine, width: float, height: float) -> Line:
    tokens = row.text.split()
    # Character offsets of each token, counting the single space between
    # tokens, are the fractions of the box width the token covers.
    total = sum(len(token) for token in tokens) + len(tokens) - 1
    span = row.right - row.left
    words = []
    offset = 0
    for position, token in enumerate(tokens, start=1):
        left = row.left + span * offset / total
        right = row.left + span * (offset + len(token)) / total
        offset += len(token) + 1
        box = Box.from_corners(
            left / width, row.top / height, right / width, row.bottom / height
        )
        words.append(Word(word_id=position, text=token, box=box))
    line_box = Box.from_corners(
        row.left / width, row.top / height, row.right / width, row.bottom / height
    )
    return Line(line_id=number, box=line_box, words=tuple(words))


def _merchant(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        entities = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError:
        log.warning("sroie_entities_unreadable", path=str(path))
        return {}
    merchant = {}
    for field, key in MERCHANT_FIELDS.items():
        value = entities.get(field)
        if isinstance(value, str) and value.strip():
            merchant[key] = value.strip()
    return merchant
