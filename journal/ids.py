"""Record ids of the receipts model, shared by producers and the consumer."""

from __future__ import annotations


def receipt_prefix(image_id: str, receipt_id: int) -> str:
    """``IMAGE#{uuid}#RECEIPT#{00001}``."""
    return f"IMAGE#{image_id}#RECEIPT#{receipt_id:05d}"


def line_id_of(image_id: str, receipt_id: int, line_id: int) -> str:
    """Record id of a line in the ``lines`` collection."""
    return f"{receipt_prefix(image_id, receipt_id)}#LINE#{line_id:05d}"


def word_id_of(image_id: str, receipt_id: int, line_id: int, word_id: int) -> str:
    """Record id of a word in the ``words`` collection."""
    return f"{line_id_of(image_id, receipt_id, line_id)}#WORD#{word_id:05d}"
