"""Tiny randomly initialised checkpoints of every supported architecture, made locally.

For tests and smoke checks of `tritone import-hf` without any download: each is built from a
config (hidden size 32, two layers), saved with ``save_pretrained`` next to the matching
feature extractor, exactly as a fine-tuned checkpoint is laid out.

A random model's scores hardly depend on its input (they sit near 1/labels for every clip),
so a wrong front end could pass a parity check. The final classifier is therefore
recalibrated on a few synthetic clips: it reads the directions in which its inputs vary most
over those clips, and the logits spread by about `LOGIT_SPREAD` between clips. (Reading
near-constant directions instead would need huge weights, which amplify float32 rounding
until the parity checks measure the CPU rather than the export.)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import transformers
from torch import nn

from tritone_tools.hf_import.checkpoint import SUPPORTED_ARCHITECTURES
from tritone_tools.hf_import.clips import FloatArray, parity_signal
from tritone_tools.hf_import.quiet import quiet_extractor_warnings, quiet_reference_warnings

__all__ = [
    "TINY_AST_MAX_LENGTH",
    "TINY_LABELS",
    "VARIANTS",
    "Variant",
    "write_tiny_checkpoint",
    "write_tiny_variant",
]

TINY_LABELS: tuple[str, ...] = ("dog", "cat", "siren", "speech", "music")
TINY_AST_MAX_LENGTH = 128
"""Frames (10 ms each) that the tiny AST sees: 1.28 s; longer clips are cut, as AST does."""
LOGIT_SPREAD = 2.0
_DIRECTIONS = 3

# Hidden size 32, two layers. The 7-layer conv feature encoder of wav2vec2/HuBERT/WavLM keeps
# its kernels and strides (400-sample receptive field, 320-sample hop), with narrow channels.
ProblemType = Literal["regression", "single_label_classification", "multi_label_classification"]
_HIDDEN = 32
_LAYERS = 2
_HEADS = 2
_FFN = 64
_CONV_DIM = (32,) * 7
_POS_CONV = 16
_POS_GROUPS = 2
_PROJ = 16


def _model_and_extractor(
    architecture: str,
    labels: Sequence[str],
    problem_type: ProblemType | None,
    whisper_mels: int,
    switches: Mapping[str, Any],
    extractor_switches: Mapping[str, Any],
) -> tuple[transformers.PreTrainedModel, transformers.SequenceFeatureExtractor, nn.Linear]:
    id2label = dict(enumerate(labels))
    label2id = {label: i for i, label in enumerate(labels)}
    ast_max_length = int(switches.get("max_length", TINY_AST_MAX_LENGTH))
    if architecture == "Wav2Vec2ForSequenceClassification":
        wav2vec2 = transformers.Wav2Vec2ForSequenceClassification(
            transformers.Wav2Vec2Config(
                hidden_size=_HIDDEN,
                num_hidden_layers=_LAYERS,
                num_attention_heads=_HEADS,
                intermediate_size=_FFN,
                conv_dim=_CONV_DIM,
                num_conv_pos_embeddings=_POS_CONV,
                num_conv_pos_embedding_groups=_POS_GROUPS,
                classifier_proj_size=_PROJ,
                id2label=id2label,
                label2id=label2id,
                problem_type=problem_type,
                **switches,
            )
        )
        w2v_extractor = transformers.Wav2Vec2FeatureExtractor(  # type: ignore[no-untyped-call]
            **{"return_attention_mask": True, **extractor_switches}
        )
        return wav2vec2, w2v_extractor, wav2vec2.classifier
    if architecture == "HubertForSequenceClassification":
        hubert = transformers.HubertForSequenceClassification(
            transformers.HubertConfig(
                hidden_size=_HIDDEN,
                num_hidden_layers=_LAYERS,
                num_attention_heads=_HEADS,
                intermediate_size=_FFN,
                conv_dim=_CONV_DIM,
                num_conv_pos_embeddings=_POS_CONV,
                num_conv_pos_embedding_groups=_POS_GROUPS,
                classifier_proj_size=_PROJ,
                id2label=id2label,
                label2id=label2id,
                problem_type=problem_type,
                **switches,
            )
        )
        hubert_extractor = transformers.Wav2Vec2FeatureExtractor(  # type: ignore[no-untyped-call]
            **{"return_attention_mask": False, **extractor_switches}
        )
        return hubert, hubert_extractor, hubert.classifier
    if architecture == "WavLMForSequenceClassification":
        wavlm = transformers.WavLMForSequenceClassification(
            transformers.WavLMConfig(
                hidden_size=_HIDDEN,
                num_hidden_layers=_LAYERS,
                num_attention_heads=_HEADS,
                intermediate_size=_FFN,
                conv_dim=_CONV_DIM,
                num_conv_pos_embeddings=_POS_CONV,
                num_conv_pos_embedding_groups=_POS_GROUPS,
                classifier_proj_size=_PROJ,
                num_buckets=32,
                max_bucket_distance=80,
                id2label=id2label,
                label2id=label2id,
                problem_type=problem_type,
                **switches,
            )
        )
        wavlm_extractor = transformers.Wav2Vec2FeatureExtractor(  # type: ignore[no-untyped-call]
            **{"return_attention_mask": True, **extractor_switches}
        )
        return wavlm, wavlm_extractor, wavlm.classifier
    if architecture == "WhisperForAudioClassification":
        whisper = transformers.WhisperForAudioClassification(
            transformers.WhisperConfig(
                d_model=_HIDDEN,
                encoder_layers=_LAYERS,
                decoder_layers=1,
                encoder_attention_heads=_HEADS,
                decoder_attention_heads=_HEADS,
                encoder_ffn_dim=_FFN,
                decoder_ffn_dim=_FFN,
                num_mel_bins=whisper_mels,
                classifier_proj_size=_PROJ,
                vocab_size=51866,
                id2label=id2label,
                label2id=label2id,
                problem_type=problem_type,
                **switches,
            )
        )
        whisper_extractor = transformers.WhisperFeatureExtractor(feature_size=whisper_mels)  # type: ignore[no-untyped-call]
        return whisper, whisper_extractor, whisper.classifier
    if architecture == "ASTForAudioClassification":
        switches = {"max_length": ast_max_length, **switches}
        ast = transformers.ASTForAudioClassification(
            transformers.ASTConfig(
                hidden_size=_HIDDEN,
                num_hidden_layers=_LAYERS,
                num_attention_heads=_HEADS,
                intermediate_size=_FFN,
                num_mel_bins=128,
                id2label=id2label,
                label2id=label2id,
                problem_type=problem_type,
                **switches,
            )
        )
        with quiet_extractor_warnings():
            ast_extractor = transformers.ASTFeatureExtractor(  # type: ignore[no-untyped-call]
                **{"max_length": ast_max_length, **extractor_switches}
            )
        dense = ast.classifier.dense
        assert isinstance(dense, nn.Linear)
        return ast, ast_extractor, dense
    raise ValueError(
        f"no tiny checkpoint for {architecture!r}; use one of {SUPPORTED_ARCHITECTURES}"
    )


def calibration_clips(sample_rate: int = 16_000) -> list[FloatArray]:
    """Varied synthetic clips: chirps, tones, noise at several levels and lengths."""
    rng = np.random.default_rng(1234)
    clips = [parity_signal(s, sample_rate, seed) for seed, s in enumerate((0.5, 1.0, 2.5, 6.0))]
    for seconds, hz in ((0.8, 300.0), (1.5, 1200.0), (3.0, 3500.0)):
        t = np.arange(round(seconds * sample_rate)) / sample_rate
        clips.append((0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32))
    for seconds, level in ((0.7, 0.02), (2.0, 0.3), (4.0, 0.1)):
        noise = level * rng.standard_normal(round(seconds * sample_rate))
        clips.append(noise.astype(np.float32))
    return clips


def _calibrate(
    model: transformers.PreTrainedModel,
    extractor: transformers.SequenceFeatureExtractor,
    classifier: nn.Linear,
) -> None:
    """Point the classifier's weights along the main directions in which its inputs vary over
    `calibration_clips`, centred, and scaled so each logit's spread over those clips is
    LOGIT_SPREAD."""
    seen: list[torch.Tensor] = []

    def keep(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: object) -> None:
        seen.append(inputs[0].detach().reshape(-1, inputs[0].shape[-1]))

    handle = classifier.register_forward_hook(keep)
    try:
        with torch.no_grad(), quiet_reference_warnings():
            for clip in calibration_clips():
                features = extractor(clip, sampling_rate=16_000, return_tensors="pt")  # type: ignore[operator]
                model(**features)
    finally:
        handle.remove()
    inputs = torch.cat(seen).double()
    mean = inputs.mean(dim=0)
    centred = inputs - mean
    # The directions in which the clips differ most: a head reading those needs the smallest
    # weights for a given spread of logits, so it amplifies float32 rounding the least
    # (standardising every feature would blow up the near-constant ones, and their noise).
    _, _, directions = torch.linalg.svd(centred, full_matrices=False)
    top = directions[: min(_DIRECTIONS, directions.shape[0])]
    generator = torch.Generator().manual_seed(0)
    mix = torch.randn(classifier.weight.shape[0], top.shape[0], generator=generator).double()
    weight = mix @ top
    spread = centred @ weight.T
    weight = weight * (LOGIT_SPREAD / spread.std(dim=0).clamp_min(1e-12)).unsqueeze(1)
    with torch.no_grad():
        classifier.weight.copy_(weight.float())
        classifier.bias.copy_((-(mean @ weight.T)).float())


def write_tiny_checkpoint(
    architecture: str,
    directory: Path,
    *,
    labels: Sequence[str] = TINY_LABELS,
    seed: int = 0,
    problem_type: ProblemType | None = None,
    whisper_mels: int = 80,
    switches: Mapping[str, Any] | None = None,
    extractor_switches: Mapping[str, Any] | None = None,
) -> Path:
    """Write a tiny random checkpoint (config, weights, preprocessor config) into ``directory``.

    ``switches`` go into the model's config (e.g. ``do_stable_layer_norm``), and
    ``extractor_switches`` into the feature extractor's (e.g. ``do_normalize``)."""
    torch.manual_seed(seed)
    model, extractor, classifier = _model_and_extractor(
        architecture,
        labels,
        problem_type,
        whisper_mels,
        dict(switches or {}),
        dict(extractor_switches or {}),
    )
    model.eval()  # type: ignore[no-untyped-call]
    _calibrate(model, extractor, classifier)
    directory.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The Whisper config's generation defaults refer to a vocabulary it does not need.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"transformers\.")
        model.save_pretrained(str(directory))
    extractor.save_pretrained(str(directory))
    return directory


@dataclass(frozen=True)
class Variant:
    """A tiny checkpoint with the architecture switches of a real published one."""

    like: str
    """The real checkpoint whose config switches (not sizes, not weights) it copies."""
    architecture: str
    labels: tuple[str, ...]
    switches: Mapping[str, Any] = field(default_factory=dict)
    extractor_switches: Mapping[str, Any] = field(default_factory=dict)
    problem_type: ProblemType | None = None
    whisper_mels: int = 80


_STABLE_LAYER_NORM = {
    # The "large" conv encoder: layer norm in every conv layer, conv biases, and the
    # transformer's layer norm before each block (pre-LN) with a final one after the stack.
    "do_stable_layer_norm": True,
    "feat_extract_norm": "layer",
    "conv_bias": True,
}
SPEECH_COMMANDS_LABELS = (
    "yes",
    "no",
    "up",
    "down",
    "left",
    "right",
    "on",
    "off",
    "stop",
    "go",
    "_silence_",
    "_unknown_",
)
VARIANTS: Mapping[str, Variant] = {
    "mms-lid-126": Variant(
        like="facebook/mms-lid-126",
        architecture="Wav2Vec2ForSequenceClassification",
        labels=tuple(f"lang{i:03d}" for i in range(126)),
        switches=_STABLE_LAYER_NORM,
        extractor_switches={"do_normalize": True, "return_attention_mask": True},
    ),
    "hubert-large-superb-er": Variant(
        like="superb/hubert-large-superb-er",
        architecture="HubertForSequenceClassification",
        labels=("neu", "hap", "ang", "sad"),
        # SUPERB's protocol: the head reads a learned weighted sum of every layer.
        switches={**_STABLE_LAYER_NORM, "use_weighted_layer_sum": True},
        extractor_switches={"do_normalize": True, "return_attention_mask": True},
    ),
    "wav2vec2-base-superb-ks": Variant(
        like="superb/wav2vec2-base-superb-ks",
        architecture="Wav2Vec2ForSequenceClassification",
        labels=SPEECH_COMMANDS_LABELS,
        # The "base" encoder: group norm in the first conv layer only, no conv biases.
        switches={
            "do_stable_layer_norm": False,
            "feat_extract_norm": "group",
            "conv_bias": False,
            "use_weighted_layer_sum": True,
        },
        extractor_switches={"do_normalize": True, "return_attention_mask": False},
    ),
    "ast-audioset": Variant(
        like="MIT/ast-finetuned-audioset-10-10-0.4593",
        architecture="ASTForAudioClassification",
        labels=("Speech", "Music", "Dog", "Cat", "Siren", "Vehicle", "Bird", "Water", "Wind"),
        # 1024 frames (10.24 s) as the real one, multi-label: sigmoid scores.
        switches={"max_length": 1024},
        problem_type="multi_label_classification",
    ),
    "whisper-encoder-30s": Variant(
        like="a WhisperForAudioClassification fine-tune (encoder only, 30 s input)",
        architecture="WhisperForAudioClassification",
        labels=("en", "de", "fr", "es", "nl", "it"),
        switches={"use_weighted_layer_sum": True},
        whisper_mels=128,
    ),
}


def write_tiny_variant(name: str, directory: Path, *, seed: int = 0) -> Path:
    """Write the tiny checkpoint of `VARIANTS[name]` into ``directory``."""
    variant = VARIANTS[name]
    return write_tiny_checkpoint(
        variant.architecture,
        directory,
        labels=variant.labels,
        seed=seed,
        problem_type=variant.problem_type,
        whisper_mels=variant.whisper_mels,
        switches=variant.switches,
        extractor_switches=variant.extractor_switches,
    )
