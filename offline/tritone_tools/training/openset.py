"""The ``unknown`` answer: cosine similarity to the enrolled labels' centroids.

Each label's centroid is the normalised mean of its L2-normalised training features. A
clip is accepted (as the head's best label) when the cosine of its features with the
nearest centroid reaches the threshold; when it is below the threshold for every enrolled
label, the model answers ``unknown``.

``auto`` calibrates the threshold on the validation split. Genuine scores: each validation
row's cosine with the nearest centroid. Impostor scores, standing in
for speakers nobody enrolled: each validation row's best cosine with the centroid of any
*other* label (what the row would score if its own label had not been enrolled), and,
when the data has clips labelled ``unknown`` (people nobody enrols), their best cosine with
any centroid: such clips calibrate the threshold and are never a label. The
threshold minimises false rejections + false acceptances over these two sets (the middle of
the best range, so that with separable sets it lies halfway across the gap).

That gap is a poor guide on its own: enrolled people stand in for strangers, and a handful
of them are easy to tell apart (other languages, other recording set-ups), so the gap sits
well below where a stranger recorded like an enrolled person falls. Tried on real people
(benchmarks/speaker_strangers.py) it let up to 44 % of such strangers through. ``tritone
train`` therefore also caps the validation false rejections (`MAX_FALSE_REJECTION`): the
threshold is raised, when that is higher, to the highest value that keeps at most 5 % of
the genuine validation scores below it (given 20 or more of them): the usual verification
operating point (a false rejection rate one chooses) when the impostors one will meet are
unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_FALSE_REJECTION", "Calibration", "calibrate", "centroids", "unit_rows"]

MAX_FALSE_REJECTION = 0.05
"""``auto`` thresholds reject at most this share of enrolled validation clips (see above)."""
CAP_MARGIN = 1e-4

FloatArray = npt.NDArray[np.float32]


def unit_rows(x: FloatArray) -> FloatArray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: FloatArray = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def centroids(x: FloatArray, y: npt.NDArray[np.int64], n_labels: int) -> FloatArray:
    """[n_labels, dim]: the normalised mean of each label's normalised rows."""
    unit = unit_rows(x)
    means = np.stack([unit[y == k].mean(axis=0) for k in range(n_labels)])
    return unit_rows(means.astype(np.float32))


@dataclass(frozen=True)
class Calibration:
    threshold: float
    genuine: FloatArray
    impostor: FloatArray

    @property
    def false_rejection(self) -> float:
        """Share of genuine validation rows that the threshold turns into ``unknown``."""
        return float(np.mean(self.genuine < self.threshold)) if self.genuine.size else 0.0

    @property
    def false_acceptance(self) -> float:
        """Share of simulated impostor rows that the threshold lets through."""
        return float(np.mean(self.impostor >= self.threshold)) if self.impostor.size else 0.0


def scores(
    x: FloatArray, y: npt.NDArray[np.int64], cents: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(genuine, impostor) cosine scores of validation rows, as described above."""
    sims = unit_rows(x) @ cents.T
    rows = np.arange(len(x))
    genuine = sims.max(axis=1)
    others = sims.copy()
    others[rows, y] = -np.inf
    impostor = others.max(axis=1)
    return genuine.astype(np.float32), impostor.astype(np.float32)


def calibrate(
    genuine: FloatArray,
    impostor: FloatArray,
    fixed: float | None = None,
    max_false_rejection: float | None = None,
) -> Calibration:
    """The threshold (`fixed` if given) with its error rates on these scores; with
    ``max_false_rejection`` (and at least 1 / that many genuine scores), raised (never
    lowered) to the highest value that leaves at most that share of them below it."""
    if fixed is not None:
        return Calibration(float(fixed), genuine, impostor)
    values = np.unique(np.concatenate([genuine, impostor]).astype(np.float64))
    candidates = np.concatenate(
        [[values[0] - 1e-3], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-3]]
    )
    errors = np.array(
        [np.mean(genuine < t) + np.mean(impostor >= t) for t in candidates], dtype=np.float64
    )
    optimal = errors <= errors.min() + 1e-12
    # The widest run of consecutive optimal candidates; its middle is the threshold.
    runs: list[tuple[float, float]] = []
    start = None
    for i, ok in enumerate(optimal):
        if ok and start is None:
            start = i
        if start is not None and (not ok or i == len(optimal) - 1):
            end = i if ok else i - 1
            runs.append((float(candidates[start]), float(candidates[end])))
            start = None
    low, high = max(runs, key=lambda r: r[1] - r[0])
    threshold = (low + high) / 2
    if max_false_rejection is not None and genuine.size * max_false_rejection >= 1:
        # Only with enough scores for that share to be a clip or more (20 for 5 %): the
        # lowest of a handful of scores says little about the tail. The highest threshold
        # that leaves at most that share of genuine scores below it:
        # the (k+1)-th smallest, k = floor(share * n), less a hair so that clip itself stays
        # accepted whatever float32 rounding the exported model adds.
        k = int(np.floor(max_false_rejection * genuine.size))
        cap = float(np.sort(genuine.astype(np.float64))[k]) - CAP_MARGIN
        threshold = max(threshold, cap)
    return Calibration(threshold, genuine, impostor)
