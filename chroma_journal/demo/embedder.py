"""Text embedders for the demo: a contract and a local one that needs no model.

:class:`HashingEmbedder` is the "hashing trick" over character n-grams and
words. It knows nothing about meaning, but strings that share spelling land
close together, which is enough to make demo queries return sensible
neighbours, and it is deterministic across processes and machines. A real
model plugs in through :class:`Embedder`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

DEFAULT_DIMENSION = 384
_NGRAM_SIZES = (2, 3, 4)
# Words weigh as much as a few n-grams, so whole-token matches (prices,
# product names) count for more than shared fragments.
_WORD_WEIGHT = 2.0
# Empty or blank text still gets a unit vector (never NaN): one fixed bucket.
_EMPTY_FEATURE = "\x00empty"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of ``dimension``."""

    dimension: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        """An array of shape ``(len(texts), dimension)``, one row per text."""
        ...


class HashingEmbedder:
    """Signed feature hashing of character 2-4-grams and words.

    Features are hashed with BLAKE2b, not Python's ``hash()``, whose value
    changes between processes for strings.
    """

    def __init__(self, dimension: int = DEFAULT_DIMENSION) -> None:
        if dimension < 2:
            raise ValueError(f"dimension must be at least 2, got {dimension}")
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed every text; see the class docstring."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            self._fill(vectors[row], text)
        return vectors

    def _fill(self, row: Vectors, text: str) -> None:
        for feature, weight in _features(text):
            bucket, sign = _bucket(feature, self.dimension)
            row[bucket] += sign * weight
        norm = float(np.linalg.norm(row))
        if norm == 0.0:
            # Opposite signs can cancel out exactly; fall back to the fixed
            # bucket so the row is still a unit vector.
            bucket, _ = _bucket(_EMPTY_FEATURE, self.dimension)
            row[bucket] = 1.0
            return
        row /= norm


def _features(text: str) -> list[tuple[str, float]]:
    """Weighted features of ``text``: padded character n-grams and words."""
    words = text.lower().split()
    if not words:
        return [(_EMPTY_FEATURE, 1.0)]
    padded = " " + " ".join(words) + " "
    features = [
        ("c:" + padded[start : start + size], 1.0)
        for size in _NGRAM_SIZES
        for start in range(len(padded) - size + 1)
    ]
    features.extend(("w:" + word, _WORD_WEIGHT) for word in words)
    return features


@functools.lru_cache(maxsize=65536)
def _bucket(feature: str, dimension: int) -> tuple[int, float]:
    """The bucket and sign of a feature, stable across runs."""
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "big")
    sign = 1.0 if value & 1 else -1.0
    return (value >> 1) % dimension, sign
