"""Logits to scores to ranked labels, in numpy over whole batches."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tritone_server.core.models import Activation, Aggregation

FloatArray = npt.NDArray[np.float32]


def activate(logits: FloatArray, activation: Activation) -> FloatArray:
    """Scores for [windows, labels] logits."""
    x = np.asarray(logits, dtype=np.float32)
    out: FloatArray
    if activation == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        out = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    elif activation == "sigmoid":
        out = (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
    else:
        out = x
    return out


def pool(scores: FloatArray, aggregation: Aggregation) -> FloatArray:
    """One clip-level score vector from per-window scores."""
    out: FloatArray
    if scores.shape[0] == 1:
        out = scores[0]
    elif aggregation == "max":
        out = scores.max(axis=0)
    else:
        out = scores.mean(axis=0).astype(np.float32)
    return out


def top_k(scores: FloatArray, labels: tuple[str, ...], k: int) -> list[tuple[str, float]]:
    """The k best (label, score) pairs, best first; ties keep label order."""
    order = np.argsort(-scores, kind="stable")[: max(k, 0)]
    return [(labels[i], float(scores[i])) for i in order]
