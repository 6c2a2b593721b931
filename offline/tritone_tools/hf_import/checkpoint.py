"""A local Hugging Face checkpoint, loaded and checked before anything is traced.

Everything the later steps need from the checkpoint (architecture family, feature
extractor, labels, activation, rate, shortest usable input) is read and validated here, so
an unusable checkpoint fails with one sentence saying why before any slow step runs.
Nothing is downloaded: only local files are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import transformers

from tritone_server.core.models import Activation
from tritone_tools.hf_import.quiet import quiet_extractor_warnings

__all__ = [
    "SUPPORTED",
    "SUPPORTED_ARCHITECTURES",
    "Checkpoint",
    "Family",
    "ImportHFError",
    "load_checkpoint",
]

Family = Literal["wav2vec2", "whisper", "ast"]

SUPPORTED: Mapping[str, Family] = {
    "Wav2Vec2ForSequenceClassification": "wav2vec2",
    "HubertForSequenceClassification": "wav2vec2",
    "WavLMForSequenceClassification": "wav2vec2",
    "WhisperForAudioClassification": "whisper",
    "ASTForAudioClassification": "ast",
}
SUPPORTED_ARCHITECTURES: tuple[str, ...] = tuple(SUPPORTED)
_EXTRACTORS: Mapping[Family, type[transformers.FeatureExtractionMixin]] = {
    "wav2vec2": transformers.Wav2Vec2FeatureExtractor,
    "whisper": transformers.WhisperFeatureExtractor,
    "ast": transformers.ASTFeatureExtractor,
}


class ImportHFError(Exception):
    """The checkpoint cannot be imported; the message says why and what to do."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    architecture: str
    family: Family
    model: transformers.PreTrainedModel
    feature_extractor: transformers.FeatureExtractionMixin
    labels: tuple[str, ...]
    activation: Activation
    sample_rate: int

    @property
    def min_samples(self) -> int:
        """The shortest input the model accepts (its conv encoder's receptive field)."""
        if self.family == "whisper":
            return 1
        if self.family == "ast":
            return 400  # one 25 ms frame
        config = self.model.config
        kernels = [int(k) for k in getattr(config, "conv_kernel", ())]
        strides = [int(s) for s in getattr(config, "conv_stride", ())]
        needed = 1
        for kernel, stride in reversed(list(zip(kernels, strides, strict=True))):
            needed = (needed - 1) * stride + kernel
        return needed


def _architecture(config: transformers.PretrainedConfig) -> str:
    architectures = list(getattr(config, "architectures", None) or [])
    if not architectures:
        raise ImportHFError(
            "config.json names no architecture (its 'architectures' list is empty); "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    supported = [a for a in architectures if a in SUPPORTED]
    if not supported:
        raise ImportHFError(
            f"architecture {', '.join(architectures)} is not supported; tritone import-hf "
            f"converts {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    return str(supported[0])


def _labels(config: transformers.PretrainedConfig) -> tuple[str, ...]:
    id2label = {int(k): str(v) for k, v in dict(config.id2label or {}).items()}
    if sorted(id2label) != list(range(len(id2label))) or not id2label:
        raise ImportHFError(f"config.id2label must map 0..n-1 to labels, got {id2label!r}")
    labels = tuple(id2label[i] for i in range(len(id2label)))
    bad = [label for label in labels if not label.strip() or "\n" in label or "\r" in label]
    if bad:
        raise ImportHFError(f"labels must be non-empty single lines: {bad!r}")
    if len(set(labels)) != len(labels):
        raise ImportHFError(f"config.id2label repeats labels: {labels!r}")
    return labels


def _activation(config: transformers.PretrainedConfig) -> Activation:
    """As the transformers pipeline chooses: sigmoid for multi-label, none for regression."""
    problem_type = getattr(config, "problem_type", None)
    if problem_type == "multi_label_classification":
        return "sigmoid"
    if problem_type == "regression":
        return "none"
    return "softmax"


def load_checkpoint(path: Path) -> Checkpoint:
    """Load a local checkpoint directory (config.json, weights, preprocessor_config.json)."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise ImportHFError(f"{path} is not a directory (a local checkpoint is needed)")
    if not (path / "config.json").is_file():
        raise ImportHFError(f"{path} has no config.json: it is not a transformers checkpoint")
    try:
        config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ImportHFError(f"cannot read {path / 'config.json'}: {exc}") from exc
    architecture = _architecture(config)
    family = SUPPORTED[architecture]
    if not (path / "preprocessor_config.json").is_file():
        raise ImportHFError(
            f"{path} has no preprocessor_config.json: the feature extractor's settings are "
            "needed to build the front end (save them with "
            "feature_extractor.save_pretrained(PATH))"
        )
    try:
        with quiet_extractor_warnings():
            # Typed in the transformers the lock pins, untyped in earlier 5.x that pyproject
            # still allows: the ignore holds on both.
            extractor = transformers.AutoFeatureExtractor.from_pretrained(  # type: ignore[no-untyped-call,unused-ignore]
                str(path), local_files_only=True
            )
    except (OSError, ValueError) as exc:
        raise ImportHFError(f"cannot read {path / 'preprocessor_config.json'}: {exc}") from exc
    expected = _EXTRACTORS[family]
    if not isinstance(extractor, expected):
        raise ImportHFError(
            f"{architecture} needs a {expected.__name__}, but preprocessor_config.json "
            f"describes a {type(extractor).__name__}"
        )
    model_class: type[transformers.PreTrainedModel] = getattr(transformers, architecture)
    try:
        model = model_class.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ImportHFError(f"cannot load the weights in {path}: {exc}") from exc
    model.eval()  # type: ignore[no-untyped-call]
    sample_rate = int(getattr(extractor, "sampling_rate", 16_000))
    checkpoint = Checkpoint(
        path=path,
        architecture=architecture,
        family=family,
        model=model,
        feature_extractor=extractor,
        labels=_labels(model.config),
        activation=_activation(model.config),
        sample_rate=sample_rate,
    )
    _check_consistent(checkpoint)
    return checkpoint


def _check_consistent(checkpoint: Checkpoint) -> None:
    config = checkpoint.model.config
    extractor = checkpoint.feature_extractor
    if checkpoint.family == "whisper":
        mels = int(getattr(extractor, "feature_size", 0))
        if mels != int(config.num_mel_bins):
            raise ImportHFError(
                f"the feature extractor makes {mels} mel bins, the model expects "
                f"{config.num_mel_bins}"
            )
        frames = int(getattr(extractor, "nb_max_frames", 0))
        if frames != 2 * int(config.max_source_positions):
            raise ImportHFError(
                f"the feature extractor makes {frames} frames, the model expects "
                f"{2 * int(config.max_source_positions)}"
            )
    elif checkpoint.family == "ast":
        for key in ("max_length", "num_mel_bins"):
            ours, theirs = int(getattr(extractor, key)), int(getattr(config, key))
            if ours != theirs:
                raise ImportHFError(
                    f"the feature extractor's {key} is {ours}, the model's is {theirs}"
                )
        if checkpoint.sample_rate != 16_000:
            raise ImportHFError("AST's Kaldi front end is defined for 16 kHz input only")
