from __future__ import annotations

import numpy as np
import pytest

from tritone_server.core.scoring import activate, pool, top_k


def test_softmax_rows_sum_to_one_and_survive_large_logits() -> None:
    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    scores = activate(logits, "softmax")
    assert np.allclose(scores.sum(axis=1), 1.0)
    assert scores[0, 0] == pytest.approx(1.0)
    assert np.all(np.isfinite(scores))


def test_sigmoid_and_none() -> None:
    logits = np.array([[0.0, 2.0]], dtype=np.float32)
    assert activate(logits, "sigmoid")[0, 0] == pytest.approx(0.5)
    assert np.array_equal(activate(logits, "none"), logits)


def test_pool_mean_and_max() -> None:
    scores = np.array([[0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    assert np.allclose(pool(scores, "mean"), [0.4, 0.6])
    assert np.allclose(pool(scores, "max"), [0.6, 0.8])


def test_top_k_is_sorted_and_bounded() -> None:
    scores = np.array([0.1, 0.5, 0.3], dtype=np.float32)
    assert [label for label, _ in top_k(scores, ("a", "b", "c"), 2)] == ["b", "c"]
    assert len(top_k(scores, ("a", "b", "c"), 10)) == 3
