"""The local hashing embedder."""

from __future__ import annotations

import numpy as np
import pytest

from chroma_journal.demo.embedder import Embedder, HashingEmbedder


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def test_hashing_embedder_satisfies_the_protocol() -> None:
    assert isinstance(HashingEmbedder(), Embedder)


def test_embeddings_are_float32_rows_of_the_dimension() -> None:
    vectors = HashingEmbedder(dimension=64).embed(["a", "b", "c"])

    assert vectors.dtype == np.float32
    assert vectors.shape == (3, 64)


def test_embeddings_are_deterministic_across_instances() -> None:
    texts = ["Nasi Campur Bali", "75,000", "TOTAL"]

    first = HashingEmbedder().embed(texts)
    second = HashingEmbedder().embed(texts)

    assert np.array_equal(first, second)


def test_rows_are_unit_length_including_blank_text() -> None:
    vectors = HashingEmbedder().embed(["Ice Lemon Tea", "", "   ", "x"])

    assert np.isfinite(vectors).all()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_similar_strings_are_closer_than_dissimilar_ones() -> None:
    tea, tea_typo, total = HashingEmbedder().embed(
        ["Ice Lemon Tea", "Ice Lemon Teh", "GRAND TOTAL 1,346,000"]
    )

    assert _cosine(tea, tea_typo) > 0.6
    assert _cosine(tea, tea_typo) > _cosine(tea, total) + 0.4


def test_case_and_spacing_do_not_change_the_vector() -> None:
    one, other = HashingEmbedder().embed(["Ice  Tea", "ice tea"])

    assert np.array_equal(one, other)


def test_empty_batch_gives_an_empty_array() -> None:
    assert HashingEmbedder(dimension=8).embed([]).shape == (0, 8)


def test_too_small_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="dimension"):
        HashingEmbedder(dimension=1)
