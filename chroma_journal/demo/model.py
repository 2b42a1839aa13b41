"""The receipts the demo loader works on, independent of the dataset format.

A reader (:mod:`chroma_journal.demo.cord`, :mod:`chroma_journal.demo.sroie`)
turns one annotation file into a :class:`Receipt`: lines of words with boxes
normalised to the page (0..1, origin top left, y down), record ids from
:mod:`journal.ids`, and the metadata each record is stored with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from journal.events import Scalar
from journal.ids import line_id_of, word_id_of

#: Fixed namespace of the demo's image ids: uuid5(NAMESPACE, "cord/receipt_00001")
#: gives the same id on every machine and every run.
IMAGE_NAMESPACE = uuid.UUID("6f1c3a52-3d0e-5b8e-9a51-0d6c2f5e7a10")

Metadata = dict[str, Scalar]


def image_id_for(source: str, name: str) -> str:
    """The deterministic image id of a receipt file (``source/name``)."""
    return str(uuid.uuid5(IMAGE_NAMESPACE, f"{source}/{name}"))


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in page units (0..1)."""

    x: float
    y: float
    width: float
    height: float

    @classmethod
    def from_corners(cls, left: float, top: float, right: float, bottom: float) -> Box:
        """A box from its edges, each clamped to the page."""
        left, right = sorted((_clamp(left), _clamp(right)))
        top, bottom = sorted((_clamp(top), _clamp(bottom)))
        return cls(x=left, y=top, width=right - left, height=bottom - top)

    @classmethod
    def union(cls, boxes: list[Box]) -> Box:
        """The smallest box holding every box of a non-empty list."""
        return cls.from_corners(
            min(box.x for box in boxes),
            min(box.y for box in boxes),
            max(box.x + box.width for box in boxes),
            max(box.y + box.height for box in boxes),
        )

    def as_metadata(self) -> Metadata:
        """The box as record metadata, rounded so the values read well."""
        return {
            "x": round(self.x, 6),
            "y": round(self.y, 6),
            "width": round(self.width, 6),
            "height": round(self.height, 6),
        }


@dataclass(frozen=True)
class Word:
    """One OCR word; ``label`` is a receipt core label, or None."""

    word_id: int
    text: str
    box: Box
    category: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class Line:
    """One text line of a receipt, its words in reading order."""

    line_id: int
    box: Box
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        """The words joined by single spaces."""
        return " ".join(word.text for word in self.words)


@dataclass(frozen=True)
class Receipt:
    """One receipt of one image, ready to be planned into events.

    ``merchant`` holds receipt-level metadata the dataset knows (SROIE's
    company and address), applied later as a metadata update.
    """

    source: str
    name: str
    image_id: str
    receipt_id: int
    lines: tuple[Line, ...]
    merchant: dict[str, str] = field(default_factory=dict)

    def line_record_id(self, line: Line) -> str:
        """Record id of ``line`` in the ``lines`` collection."""
        return line_id_of(self.image_id, self.receipt_id, line.line_id)

    def word_record_id(self, line: Line, word: Word) -> str:
        """Record id of ``word`` in the ``words`` collection."""
        return word_id_of(self.image_id, self.receipt_id, line.line_id, word.word_id)

    def line_metadata(self, line: Line) -> Metadata:
        """The metadata a line record is stored with."""
        return {
            **self._identity(),
            "line_id": line.line_id,
            "text": line.text,
            **line.box.as_metadata(),
            "word_count": len(line.words),
        }

    def word_metadata(self, line: Line, word: Word) -> Metadata:
        """The metadata a word record is stored with (labels come later)."""
        metadata: Metadata = {
            **self._identity(),
            "line_id": line.line_id,
            "word_id": word.word_id,
            "text": word.text,
            **word.box.as_metadata(),
        }
        if word.category is not None:
            metadata["cord_category"] = word.category
        return metadata

    def _identity(self) -> Metadata:
        return {
            "image_id": self.image_id,
            "receipt_id": self.receipt_id,
            "source": self.source,
            "source_file": self.name,
        }


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))
