"""A local Hugging Face audio-classification checkpoint -> one Triton model directory.

The model written takes the raw mono waveform, FP32 [batch, samples] at the feature
extractor's rate (16 kHz for every supported family), and returns logits FP32 [batch,
labels]: the feature extraction runs inside it (`frontends`), so the gateway sends audio and
nothing else. Steps:

1. load the checkpoint and its feature extractor (local files only; nothing is downloaded);
2. wrap front end + model in `HFAudioClassifier` and trace it with `torch.jit.trace` (these
   models do not script; traced once on a 2 s batch of two, the graph keeps lengths and
   batch sizes dynamic);
3. freeze the trace (one graph, no submodules) and replace every device constant the trace
   recorded (transformers creates tensors "on the device of" some weight or activation, e.g.
   Whisper's position ids, WavLM's relative positions, wav2vec2's positional conv) with the
   device of the input waveform, so the file runs on GPU although it was traced on CPU;
4. check the trace against the eager model at several lengths and batch sizes, and measure
   the scores against ``transformers.pipeline("audio-classification")`` (`PARITY_CASES`:
   1 s, 3.7 s and 10 s at the model's rate, 3 s at 8 kHz and at 44.1 kHz resampled as the
   gateway resamples); refuse the import when any differs by more than the tolerance;
5. write config.pbtxt, labels.txt, 1/model.pt and a README.md card, atomically.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
import transformers
from torch import Tensor, nn
from torch.jit import TracerWarning  # type: ignore[attr-defined]
from tqdm import tqdm

from tritone_server.audio.dsp import resample
from tritone_server.core.models import Activation
from tritone_server.hf_import.frontends import KaldiFbank, UtteranceNormalizer, WhisperLogMel
from tritone_server.triton.model_config import TensorConfig, render_config
from tritone_server.triton.torchscript import device_constant_nodes, device_constants

__all__ = [
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_TOLERANCE",
    "PARITY_CASES",
    "PARITY_SECONDS",
    "SUPPORTED_ARCHITECTURES",
    "Checkpoint",
    "ExportResult",
    "HFAudioClassifier",
    "ImportHFError",
    "build_classifier",
    "check_parity",
    "device_constants",
    "export_checkpoint",
    "load_checkpoint",
    "parity_signal",
    "pipeline_scores",
    "trace_classifier",
]

Family = Literal["wav2vec2", "whisper", "ast"]
FloatArray = npt.NDArray[np.float32]

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
_MODEL_INPUT: Mapping[Family, str] = {
    "wav2vec2": "input_values",
    "whisper": "input_features",
    "ast": "input_values",
}

DEFAULT_MAX_BATCH_SIZE = 8
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
TRACE_SECONDS = 2.0
# (seconds, batch size) at which the trace is checked against the eager model.
TRACE_CHECKS: tuple[tuple[float, int], ...] = ((0.1, 1), (1.0, 3), (3.7, 1), (10.0, 2))
TRACE_TOLERANCE = 1e-3
"""Largest |traced - eager| logit difference accepted; measured ones are ~1e-6."""
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ImportHFError(Exception):
    """The checkpoint cannot be imported; the message says why and what to do."""


@contextlib.contextmanager
def quiet_extractor_warnings() -> Iterator[None]:
    """ASTFeatureExtractor's numpy path warns that its top mel filters are empty (they are,
    for 128 Kaldi bins on a 257-bin FFT, exactly as the checkpoint was trained)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", r"At least one mel filter has all zero values", UserWarning
        )
        yield


@contextlib.contextmanager
def quiet_reference_warnings() -> Iterator[None]:
    """Running the transformers model on its extractor's output with an attention mask:
    WavLM's attention hands torch a float attn_mask and a bool padding mask, which torch
    deprecates. (The exported model takes no mask: each clip is whole.)"""
    with quiet_extractor_warnings(), warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", r"Support for mismatched key_padding_mask and attn_mask", UserWarning
        )
        yield


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """torch >= 2.10 deprecates TorchScript (Triton's libtorch backend needs it), and the
    tracer warns about Python values it records as constants (the checks below prove the
    trace general over lengths and batch sizes)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", category=TracerWarning)
        # The tracer probes every attribute of every module; transformers 5 deprecates one.
        warnings.filterwarnings(
            "ignore", r"`is_gradient_checkpointing` is deprecated", FutureWarning
        )
        yield


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
            extractor = transformers.AutoFeatureExtractor.from_pretrained(  # type: ignore[no-untyped-call]
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


def parity_signal(seconds: float, sample_rate: int = 16_000, seed: int = 0) -> FloatArray:
    """A deterministic test clip: a rising chirp, a tone burst and noise, peak about 0.6."""
    n = max(1, round(seconds * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    rng = np.random.default_rng(seed)
    f0, f1 = 150.0 + 50.0 * seed, 5000.0
    chirp = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * max(seconds, 1e-3))))
    burst = np.sin(2 * np.pi * 880.0 * t) * (np.sin(2 * np.pi * 1.5 * t) > 0.3)
    noise = rng.standard_normal(n)
    clip: FloatArray = (0.3 * chirp + 0.2 * burst + 0.1 * noise).astype(np.float32)
    return clip


def _rewrite_device_constants(module: torch.jit.ScriptModule) -> int:
    """Replace each device constant in the (frozen, single) forward graph by the device of
    the ``waveform`` input; returns how many there were."""
    graph = module.graph
    constants = device_constant_nodes(graph)
    if not constants:
        return 0
    waveform = list(graph.inputs())[1]
    device = graph.create("prim::device", [waveform], 1)
    device.output().setType(constants[0].output().type())
    device.insertBefore(next(iter(graph.nodes())))
    for node in constants:
        node.output().replaceAllUsesWith(device.output())
        node.destroy()
    torch._C._jit_pass_lint(graph)
    return len(constants)


def _save_load(module: torch.jit.ScriptModule) -> tuple[bytes, torch.jit.ScriptModule]:
    buffer = io.BytesIO()
    with _quiet_tracing():
        torch.jit.save(module, buffer)
        data = buffer.getvalue()
        loaded: torch.jit.ScriptModule = torch.jit.load(  # type: ignore[no-untyped-call]
            io.BytesIO(data), map_location="cpu"
        )
    return data, loaded


def trace_classifier(classifier: HFAudioClassifier, sample_rate: int) -> torch.jit.ScriptModule:
    """Trace, freeze, make device-agnostic, and reload (what Triton will run)."""
    example = torch.from_numpy(
        np.stack([parity_signal(TRACE_SECONDS, sample_rate, seed=s) for s in (7, 8)])
    )
    classifier.eval()
    with torch.no_grad(), _quiet_tracing():
        traced = torch.jit.trace(  # type: ignore[no-untyped-call]
            classifier, example, check_trace=False
        )
        frozen = torch.jit.freeze(traced, optimize_numerics=False)
    _rewrite_device_constants(frozen)
    _, loaded = _save_load(frozen)
    remaining = device_constants(loaded)
    if remaining:
        raise ImportHFError(
            "the traced model still names a device, so it would not run on GPU: "
            + "; ".join(remaining[:5])
        )
    return loaded


def _run(module: Callable[[Tensor], Tensor], audio: FloatArray) -> FloatArray:
    batch = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    if batch.ndim == 1:
        batch = batch.unsqueeze(0)
    with torch.inference_mode():
        result: FloatArray = module(batch).float().numpy()
    return result


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


def _trace_error(
    traced: torch.jit.ScriptModule, classifier: HFAudioClassifier, checkpoint: Checkpoint
) -> float:
    """Largest |traced - eager| logit difference over TRACE_CHECKS."""
    worst = 0.0
    rate = checkpoint.sample_rate
    for seconds, batch in TRACE_CHECKS:
        n = max(checkpoint.min_samples, round(seconds * rate))
        audio = np.stack([parity_signal(n / rate, rate, seed) for seed in range(batch)])
        diff = np.abs(_run(traced, audio) - _run(classifier, audio)).max()
        worst = max(worst, float(diff))
    return worst


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


ParityKey = tuple[float, int]
"""(seconds of audio, the rate it was given at)."""


def _pipeline_parity(
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
        got = _activate(_run(traced, audio)[0], checkpoint.activation)
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


@dataclass(frozen=True)
class ExportResult:
    name: str
    directory: Path
    architecture: str
    labels: tuple[str, ...]
    activation: Activation
    min_samples: int
    trace_error: float
    """Largest |traced - eager| logit difference over the checked lengths and batches."""
    parity: dict[ParityKey, float] = field(default_factory=dict)
    """(seconds, input rate) -> largest |score difference| against the transformers pipeline."""
    tolerance: float = DEFAULT_TOLERANCE
    seconds: float = 0.0


def _frontend_text(checkpoint: Checkpoint, frontend: nn.Module) -> str:
    if isinstance(frontend, UtteranceNormalizer):
        if frontend.do_normalize:
            return (
                "zero-mean unit-variance normalisation of each clip (Wav2Vec2FeatureExtractor, "
                "`do_normalize`: population variance + 1e-7), then the model's conv encoder"
            )
        return "none: the waveform goes to the model's conv encoder as it is (`do_normalize` off)"
    if isinstance(frontend, WhisperLogMel):
        return (
            f"Whisper log-mel (WhisperFeatureExtractor): pad or cut to "
            f"{frontend.n_samples / checkpoint.sample_rate:g} s, {frontend.n_fft}-point STFT "
            f"every {frontend.hop_length} samples (periodic Hann, reflect-centred), power, "
            f"the extractor's {frontend.n_mels} mel filters, log10, floor 8 below the clip's "
            "peak, (x + 4) / 4"
        )
    assert isinstance(frontend, KaldiFbank)
    normalise = (
        f", normalised (x - {frontend.mean:g}) / (2 * {frontend.std:g})"
        if frontend.do_normalize
        else ""
    )
    return (
        "Kaldi-style fbank (ASTFeatureExtractor): 25 ms frames every 10 ms, DC removed, "
        "pre-emphasis 0.97, symmetric Hann window, 512-point FFT power, "
        f"{frontend.n_mels} Kaldi mel filters, natural log (floor float32 epsilon), padded "
        f"with zeros or cut to {frontend.max_length} frames "
        f"({frontend.max_length / 100:g} s){normalise}"
    )


def _ascii(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _description(checkpoint: Checkpoint) -> str:
    return _ascii(
        f"{checkpoint.architecture} imported from the Hugging Face checkpoint at "
        f"{checkpoint.path} by tritone import-hf; {len(checkpoint.labels)} labels, "
        "feature extraction inside the model, whole clip as one window."
    )


_BATCHING_NOTE = (
    "# Batches hold equal-length clips only: Triton's dynamic batcher merges requests of the\n"
    "# same shape, and the gateway sends each clip whole (window_samples 0), never padded.\n"
    "# Zero-padding a shorter clip into a batch changes wav2vec2/HuBERT/WavLM outputs.\n"
)


def config_text(
    name: str, checkpoint: Checkpoint, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
) -> str:
    parameters = {
        "task": "audio-classification",
        "sample_rate": str(checkpoint.sample_rate),
        "window_samples": "0",
        "hop_samples": "0",
        "min_samples": str(checkpoint.min_samples),
        "activation": checkpoint.activation,
        "aggregation": "mean",
        "description": _description(checkpoint),
    }
    text = render_config(
        name,
        inputs=[TensorConfig("waveform", (-1,))],
        outputs=[TensorConfig("logits", (len(checkpoint.labels),), label_file=True)],
        parameters=parameters,
        labels=checkpoint.labels,
        max_batch_size=max_batch_size,
    )
    return text.replace("dynamic_batching", _BATCHING_NOTE + "dynamic_batching", 1)


def readme_text(
    name: str, checkpoint: Checkpoint, frontend: nn.Module, result: ExportResult
) -> str:
    labels = ", ".join(f"`{label}`" for label in checkpoint.labels)
    rows = "\n".join(f"| {s:g} s | {r} Hz | {d:.2e} |" for (s, r), d in result.parity.items())
    rate = checkpoint.sample_rate
    checks = ", ".join(f"{s:g} s x {b}" for s, b in TRACE_CHECKS)
    frontend_text = _frontend_text(checkpoint, frontend)
    return f"""# {name}

Imported by `tritone import-hf` from a local Hugging Face checkpoint.

- Source checkpoint: `{checkpoint.path}`
- Architecture: `{checkpoint.architecture}` (transformers {transformers.__version__})
- Task: audio-classification, activation {checkpoint.activation}, aggregation mean,
  {len(checkpoint.labels)} labels (labels.txt, from `config.id2label`): {labels}

## Tensors

- Input `waveform`: FP32 [batch, samples], mono, {rate} Hz, at least
  {checkpoint.min_samples} samples ({checkpoint.min_samples / rate:.4f} s; config parameter
  `min_samples`: the gateway answers shorter audio with INVALID_ARGUMENT).
- Output `logits`: FP32 [batch, {len(checkpoint.labels)}].

The gateway sends each clip whole as one request (`window_samples` 0): the model sees the
same samples the transformers pipeline would. Batches hold equal-length clips only (Triton's
dynamic batcher merges same-shape requests): zero-padding a shorter clip into a batch
changes the outputs of wav2vec2, HuBERT and WavLM (by up to 0.35 measured).

## Front end (inside the TorchScript model)

{frontend_text[:1].upper() + frontend_text[1:]}.

## Parity, measured at export

Largest absolute score difference between this model and
`transformers.pipeline("audio-classification", top_k=None)` on the same deterministic
clip (chirp + tone burst + noise); audio at another rate is resampled to {rate} Hz as the
gateway resamples it (soxr HQ), and both get that. The import fails above
{result.tolerance:g} (`--tolerance`).

| clip | given at | max abs score difference |
| --- | --- | --- |
{rows}

Traced model against the eager transformers model ({checks}): largest logit
difference {result.trace_error:.2e}.

## How it was built

`1/model.pt` is `torch.jit.trace` of front end + model (traced once on a
{TRACE_SECONDS:g} s batch of two; lengths and batch sizes stay dynamic), frozen, with every
device constant replaced by the input's device, so it runs on GPU as on CPU.

    tritone import-hf {_ascii(str(checkpoint.path))} --name {name}

## Licence

That of the source checkpoint.
"""


def _check_name(name: str) -> None:
    if not _MODEL_NAME.match(name) or name in (".", ".."):
        raise ImportHFError(
            f"model name {name!r} is not usable: letters, digits, '_', '.', '-' "
            "(up to 128), not starting with '.' or '-'"
        )


def export_checkpoint(
    path: Path,
    name: str,
    repository: Path,
    *,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    overwrite: bool = False,
    progress: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportResult:
    """Convert the checkpoint at ``path`` into ``repository/name``; see the module doc."""
    _check_name(name)
    if max_batch_size < 1:
        raise ImportHFError("max_batch_size must be at least 1")
    if not tolerance >= 0.0:
        raise ImportHFError(f"the tolerance must be a number >= 0, got {tolerance}")
    repository = Path(repository).expanduser().resolve()
    target = repository / name
    if target.exists() and not overwrite:
        raise ImportHFError(f"{target} exists; pass --overwrite to replace it")
    start = time.monotonic()
    steps = tqdm(
        total=5, desc=f"import-hf {name}", unit="step", disable=not progress, file=sys.stderr
    )
    with steps:
        steps.set_postfix_str("loading the checkpoint")
        checkpoint = load_checkpoint(path)
        steps.update()
        steps.set_postfix_str("tracing")
        classifier = build_classifier(checkpoint)
        traced = trace_classifier(classifier, checkpoint.sample_rate)
        steps.update()
        steps.set_postfix_str("checking the trace")
        trace_error = _trace_error(traced, classifier, checkpoint)
        if not trace_error <= TRACE_TOLERANCE:
            raise ImportHFError(
                f"the traced model differs from the eager one by {trace_error:.3g} in logits"
            )
        steps.update()
        steps.set_postfix_str("comparing with the transformers pipeline")
        parity = _pipeline_parity(traced, checkpoint)
        check_parity(parity, tolerance)
        steps.update()
        steps.set_postfix_str("writing")
        result = ExportResult(
            name=name,
            directory=target,
            architecture=checkpoint.architecture,
            labels=checkpoint.labels,
            activation=checkpoint.activation,
            min_samples=checkpoint.min_samples,
            trace_error=trace_error,
            parity=parity,
            tolerance=tolerance,
        )
        _write(target, traced, checkpoint, classifier.frontend, result, max_batch_size)
        steps.update()
    return ExportResult(**{**result.__dict__, "seconds": time.monotonic() - start})


def _write(
    target: Path,
    traced: torch.jit.ScriptModule,
    checkpoint: Checkpoint,
    frontend: nn.Module,
    result: ExportResult,
    max_batch_size: int,
) -> None:
    """Write into a hidden sibling folder, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        (partial / "1").mkdir(parents=True)
        data, _ = _save_load(traced)
        (partial / "1" / "model.pt").write_bytes(data)
        (partial / "config.pbtxt").write_text(
            config_text(target.name, checkpoint, max_batch_size), encoding="utf-8"
        )
        (partial / "labels.txt").write_text(
            "".join(f"{label}\n" for label in checkpoint.labels), encoding="utf-8"
        )
        (partial / "README.md").write_text(
            readme_text(target.name, checkpoint, frontend, result), encoding="utf-8"
        )
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        if target.exists():
            target.rename(old)
        partial.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
