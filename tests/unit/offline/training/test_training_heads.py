"""Heads, the stratified split and the unknown-threshold calibration."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from tritone_tools.training.heads import Head, stratified_split, train_head
from tritone_tools.training.openset import calibrate, centroids, scores


def blobs(n: int, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 12)) * 4
    y = np.repeat(np.arange(3), n)
    x = centres[y] + rng.normal(size=(3 * n, 12))
    return x.astype(np.float32), y.astype(np.int64)


def test_stratified_split_keeps_every_label_on_both_sides() -> None:
    targets = np.asarray([0] * 10 + [1] * 2 + [2] * 5, dtype=np.int64)
    train, val = stratified_split(targets, 0.2, seed=0)
    assert sorted([*train, *val]) == list(range(len(targets)))
    assert np.bincount(targets[val]).tolist() == [2, 1, 1]
    assert np.bincount(targets[train]).tolist() == [8, 1, 4]
    again, _ = stratified_split(targets, 0.2, seed=0)
    assert again.tolist() == train.tolist()


def test_heads_learn_separable_data_and_stop_early() -> None:
    x, y = blobs(40, seed=1)
    train, val = stratified_split(y, 0.25, seed=0)
    for kind in ("logreg", "mlp"):
        trained = train_head(
            kind,
            x[train],
            y[train],
            x[val],
            y[val],
            3,
            seed=0,
            max_epochs=60,
            patience=10,
            progress=False,
        )
        assert isinstance(trained.head, Head)
        with torch.no_grad():
            predicted = trained.head(torch.from_numpy(x[val])).argmax(dim=1).numpy()
        assert (predicted == y[val]).mean() == 1.0
        assert trained.best_epoch <= trained.epochs <= trained.best_epoch + 10
        # Standardisation lives in the head: the training mean is a buffer.
        assert torch.allclose(trained.head.mean, torch.from_numpy(x[train]).mean(dim=0))


def test_calibration_puts_a_separable_threshold_in_the_gap() -> None:
    genuine = np.asarray([0.9, 0.85, 0.95], dtype=np.float32)
    impostor = np.asarray([0.5, 0.6, 0.7], dtype=np.float32)
    cal = calibrate(genuine, impostor)
    assert abs(cal.threshold - 0.775) < 1e-6
    assert cal.false_rejection == 0.0 and cal.false_acceptance == 0.0
    fixed = calibrate(genuine, impostor, fixed=0.88)
    assert fixed.threshold == 0.88
    assert abs(fixed.false_rejection - 1 / 3) < 1e-9 and fixed.false_acceptance == 0.0


def test_calibration_can_cap_the_false_rejections() -> None:
    """Easy impostors leave a wide gap; the cap raises the threshold to the genuine scores'
    quantile, never lowers it."""
    genuine = np.linspace(0.7, 0.9, 21).astype(np.float32)
    impostor = np.asarray([0.2, 0.3], dtype=np.float32)
    assert calibrate(genuine, impostor).threshold <= 0.5
    capped = calibrate(genuine, impostor, max_false_rejection=0.05)
    # 21 scores: one (floor(0.05 * 21)) may fall below; the threshold sits just under the 2nd.
    assert genuine[0] < capped.threshold < genuine[1]
    assert capped.false_rejection == 1 / 21
    few = calibrate(genuine[:19], impostor, max_false_rejection=0.05)
    assert few.threshold == calibrate(genuine[:19], impostor).threshold  # 5 % of 19 < 1 clip
    close = np.asarray([0.69, 0.695], dtype=np.float32)
    assert calibrate(genuine, close, max_false_rejection=0.05).threshold > 0.7


def test_calibration_minimises_errors_when_scores_overlap() -> None:
    genuine = np.asarray([0.6, 0.8, 0.9, 0.95], dtype=np.float32)
    impostor = np.asarray([0.3, 0.4, 0.7, 0.65], dtype=np.float32)
    cal = calibrate(genuine, impostor)
    # Best: reject below ~0.75 (one genuine lost, no impostor passes) or keep 0.6 in.
    assert cal.false_rejection + cal.false_acceptance == 0.25


def test_impostor_scores_ignore_the_rows_own_label() -> None:
    x = np.asarray([[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0]], dtype=np.float32)
    y = np.asarray([0, 1, 0], dtype=np.int64)
    cents = centroids(x, y, 2)
    genuine, impostor = scores(x, y, cents)
    assert genuine[1] > 0.99 and impostor[1] < 0.2
    assert np.all(genuine > impostor)


def test_genuine_scores_are_the_nearest_centroid() -> None:
    """The rule is "far from every enrolled label": a row's genuine score is its best cosine
    over all centroids, whichever label it carries."""
    x = np.asarray([[1, 0, 0], [0, 1, 0], [0.2, 1, 0]], dtype=np.float32)
    y = np.asarray([0, 1, 0], dtype=np.int64)  # row 2 is labelled 0 but sits near label 1
    cents = centroids(x, y, 2)
    genuine, _ = scores(x, y, cents)
    np.testing.assert_allclose(genuine, (x / np.linalg.norm(x, axis=1)[:, None] @ cents.T).max(1))
