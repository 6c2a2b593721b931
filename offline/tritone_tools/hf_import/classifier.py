"""Front end + transformers model as one torch module taking the raw waveform.

The gateway sends audio and nothing else, so the feature extraction has to run inside the
exported model: `build_frontend` picks the torch front end (`frontends`) equal to the
checkpoint's feature extractor, and `HFAudioClassifier` puts it in front of the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt
import torch
import transformers
from torch import Tensor, nn

from tritone_tools.hf_import.checkpoint import Checkpoint, Family
from tritone_tools.hf_import.clips import FloatArray
from tritone_tools.hf_import.frontends import KaldiFbank, UtteranceNormalizer, WhisperLogMel
from tritone_tools.hf_import.quiet import quiet_extractor_warnings

__all__ = ["HFAudioClassifier", "build_classifier", "build_frontend", "run_classifier"]

_MODEL_INPUT: Mapping[Family, str] = {
    "wav2vec2": "input_values",
    "whisper": "input_features",
    "ast": "input_values",
}


def build_frontend(checkpoint: Checkpoint) -> nn.Module:
    """The torch front end equal to the checkpoint's feature extractor."""
    extractor = checkpoint.feature_extractor
    if checkpoint.family == "wav2vec2":
        return UtteranceNormalizer(bool(getattr(extractor, "do_normalize", True)))
    if checkpoint.family == "whisper":
        # The extractor's own filters (80 or 128 mel bins), stored as a buffer.
        return WhisperLogMel(
            np.asarray(getattr(extractor, "mel_filters")),  # noqa: B009 - typed as Any
            n_fft=int(getattr(extractor, "n_fft")),  # noqa: B009
            hop_length=int(getattr(extractor, "hop_length")),  # noqa: B009
            n_samples=int(getattr(extractor, "n_samples")),  # noqa: B009
        )
    filters, window = _ast_filters_and_window(extractor)
    return KaldiFbank(
        filters,
        window,
        max_length=int(getattr(extractor, "max_length")),  # noqa: B009
        mean=float(getattr(extractor, "mean")),  # noqa: B009
        std=float(getattr(extractor, "std")),  # noqa: B009
        do_normalize=bool(getattr(extractor, "do_normalize", True)),
    )


def _ast_filters_and_window(
    extractor: transformers.FeatureExtractionMixin,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The extractor's numpy-path filters and window; computed the same way when torchaudio
    is installed (the extractor then calls torchaudio's Kaldi fbank and keeps neither)."""
    mel_filters = getattr(extractor, "mel_filters", None)
    window = getattr(extractor, "window", None)
    if mel_filters is None or window is None:
        from transformers.audio_utils import mel_filter_bank, window_function

        with quiet_extractor_warnings():
            mel_filters = mel_filter_bank(
                num_frequency_bins=257,
                num_mel_filters=int(getattr(extractor, "num_mel_bins")),  # noqa: B009
                min_frequency=20,
                max_frequency=16_000 // 2,
                sampling_rate=16_000,
                norm=None,
                mel_scale="kaldi",
                triangularize_in_mel_space=True,
            )
        window = window_function(400, "hann", periodic=False)
    return np.asarray(mel_filters, dtype=np.float64), np.asarray(window, dtype=np.float64)


class HFAudioClassifier(nn.Module):
    """waveform FP32 [batch, samples] -> front end -> transformers model -> logits."""

    def __init__(self, frontend: nn.Module, model: transformers.PreTrainedModel, input_name: str):
        super().__init__()
        self.frontend = frontend
        self.model = model
        self.input_name = input_name

    def forward(self, waveform: Tensor) -> Tensor:
        features = self.frontend(waveform)
        logits = self.model(**{self.input_name: features}).logits
        assert isinstance(logits, Tensor)
        return logits


def build_classifier(checkpoint: Checkpoint) -> HFAudioClassifier:
    return HFAudioClassifier(
        build_frontend(checkpoint), checkpoint.model, _MODEL_INPUT[checkpoint.family]
    ).eval()


def run_classifier(module: Callable[[Tensor], Tensor], audio: FloatArray) -> FloatArray:
    """Logits of ``module`` (eager or traced) for numpy audio, one clip or a batch."""
    batch = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    if batch.ndim == 1:
        batch = batch.unsqueeze(0)
    with torch.inference_mode():
        result: FloatArray = module(batch).float().numpy()
    return result
