"""`tritone_tools.evaluation.metrics`: accuracy, per-class and macro P/R/F1 and the confusion
matrix, checked against scikit-learn (including 0/0 and labels only the model predicts), and
the table."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (  # type: ignore[import-untyped]
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from tritone_tools.evaluation.metrics import compute_metrics, format_metrics

CASES = {
    "random": (
        list(np.random.default_rng(0).choice(["a", "b", "c", "d"], 200)),
        list(np.random.default_rng(1).choice(["a", "b", "c", "d"], 200)),
    ),
    # "c" is never predicted (precision 0/0) and "unknown" is predicted but not in the data.
    "zero division": (
        ["a", "a", "b", "b", "c", "c"],
        ["a", "unknown", "b", "a", "unknown", "a"],
    ),
    "perfect": (["x", "y", "y"], ["x", "y", "y"]),
    "all wrong": (["x", "y"], ["y", "x"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_metrics_match_scikit_learn(case: str) -> None:
    y_true, y_pred = (list(map(str, v)) for v in CASES[case])
    metrics = compute_metrics(y_true, y_pred)
    data_labels = sorted(set(y_true))
    assert list(metrics.data_labels) == data_labels
    assert list(metrics.labels) == data_labels + sorted(set(y_pred) - set(y_true))
    assert metrics.accuracy == pytest.approx(accuracy_score(y_true, y_pred))

    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=list(metrics.labels), zero_division=0
    )
    for i, c in enumerate(metrics.per_class):
        assert (c.precision, c.recall, c.f1, c.support) == pytest.approx((p[i], r[i], f[i], s[i]))
    macro = precision_recall_fscore_support(
        y_true, y_pred, labels=data_labels, average="macro", zero_division=0
    )
    assert (metrics.macro_precision, metrics.macro_recall, metrics.macro_f1) == pytest.approx(
        macro[:3]
    )
    expected = confusion_matrix(y_true, y_pred, labels=list(metrics.labels))
    assert np.array_equal(np.asarray(metrics.confusion), expected)


def test_format_metrics_prints_every_label_and_the_macro_row() -> None:
    text = format_metrics(compute_metrics(["a", "a", "b"], ["a", "b", "b"]))
    lines = text.splitlines()
    assert lines[0] == "accuracy 0.6667"
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:]}
    assert rows["a"] == ["1.0000", "0.5000", "0.6667", "2"]
    assert rows["b"] == ["0.5000", "1.0000", "0.6667", "1"]
    assert rows["macro"] == ["avg", "0.7500", "0.7500", "0.6667", "3"]


def test_compute_metrics_refuses_mismatched_or_empty_input() -> None:
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        compute_metrics(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no predictions"):
        compute_metrics([], [])
    with pytest.raises(ValueError, match=r"\['c'\] are not in labels"):
        compute_metrics(["a", "c"], ["a", "a"], labels=["a", "b"])
