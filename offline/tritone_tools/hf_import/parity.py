"""The exported model's scores against ``transformers.pipeline("audio-classification")``.

The pipeline is the reference a checkpoint's users know; an import whose scores differ from
it by more than the tolerance is refused, because a front end that does not reproduce the
feature extractor is otherwise invisible (the model still returns plausible scores).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import transformers
from torch import Tensor

from tritone_server.audio.dsp import resample
from tritone_server.core.models import Activation
from tritone_tools.hf_import.checkpoint import Checkpoint, ImportHFError
from tritone_tools.hf_import.classifier import run_classifier
from tritone_tools.hf_import.clips import FloatArray, parity_signal
from tritone_tools.hf_import.quiet import quiet_extractor_warnings, quiet_reference_warnings

__all__ = [
    "DEFAULT_TOLERANCE",
    "PARITY_CASES",
    "PARITY_RATES",
    "PARITY_SECONDS",
    "ParityKey",
    "check_parity",
    "measure_parity",
    "pipeline_scores",
]

PARITY_SECONDS: tuple[float, ...] = (1.0, 3.7, 10.0)
PARITY_RATES: tuple[int, ...] = (8_000, 44_100)
PARITY_CASES: tuple[tuple[float, int | None], ...] = (
    *((seconds, None) for seconds in PARITY_SECONDS),
    *((3.0, rate) for rate in PARITY_RATES),
)
"""(seconds, input rate) at which the scores are compared with the pipeline; None is the
model's own rate. Other rates are resampled to the model's rate as the gateway does (soxr
HQ) and both sides get that audio: the pipeline resamples with torchaudio, a different
resampler, so giving it the original would measure the resamplers, not the export."""
DEFAULT_TOLERANCE = 1e-4
"""Largest |score difference| (probabilities after the checkpoint's activation) accepted
against the pipeline. float32 rounding moves scores by ~1e-6 on real checkpoints; a wrong
front end moves them by 1e-3 and more."""

ParityKey = tuple[float, int]
"""(seconds of audio, the rate it was given at)."""


def _activate(logits: FloatArray, activation: Activation) -> FloatArray:
    x = logits.astype(np.float64)
    if activation == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        scores: FloatArray = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    elif activation == "sigmoid":
        scores = (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
    else:
        scores = logits
    return scores


def pipeline_scores(
    pipe: Callable[..., object], audio: FloatArray, labels: Sequence[str]
) -> FloatArray:
    """The scores ``pipeline("audio-classification", top_k=None)`` gives, in label order."""
    with quiet_reference_warnings():
        result = pipe(audio, top_k=None)
    assert isinstance(result, list)
    by_label = {str(item["label"]): float(item["score"]) for item in result}
    return np.array([by_label[label] for label in labels], dtype=np.float32)


def _pipeline(checkpoint: Checkpoint) -> Callable[..., object]:
    with quiet_extractor_warnings():
        pipe: Callable[..., object] = transformers.pipeline(
            "audio-classification",
            model=checkpoint.model,
            feature_extractor=checkpoint.feature_extractor,
            device="cpu",
        )
    return pipe


def measure_parity(
    traced: Callable[[Tensor], Tensor], checkpoint: Checkpoint
) -> dict[ParityKey, float]:
    """(seconds, input rate) -> largest |score difference| against the pipeline."""
    pipe = _pipeline(checkpoint)
    parity: dict[ParityKey, float] = {}
    model_rate = checkpoint.sample_rate
    for seconds, given_rate in PARITY_CASES:
        rate = given_rate or model_rate
        audio = resample(parity_signal(seconds, rate), rate, model_rate)
        if len(audio) < checkpoint.min_samples:
            continue
        expected = pipeline_scores(pipe, audio, checkpoint.labels)
        got = _activate(run_classifier(traced, audio)[0], checkpoint.activation)
        parity[(seconds, rate)] = float(np.abs(got - expected).max())
    return parity


def check_parity(parity: Mapping[ParityKey, float], tolerance: float) -> None:
    """Raise ImportHFError naming the measured difference when it exceeds ``tolerance``."""
    (seconds, rate), worst = max(parity.items(), key=lambda item: item[1])
    if not worst <= tolerance:  # a NaN fails too
        raise ImportHFError(
            f"the exported model's scores differ from transformers.pipeline"
            f"('audio-classification') by up to {worst:.3g} (on {seconds:g} s of audio at "
            f"{rate} Hz), more than the tolerance {tolerance:g}; nothing was written. The "
            "front end does not reproduce this checkpoint's feature extractor (please report "
            "it), or pass a larger --tolerance if the difference is acceptable"
        )
