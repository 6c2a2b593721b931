"""The text files of an imported model's directory: config.pbtxt and the README.md card.

The config carries what the gateway needs to serve the model (rate, minimum length, whole
clip as one window, activation); the card records where the model came from and what was
measured at import, so the figures travel with the model.
"""

from __future__ import annotations

from collections.abc import Mapping

import transformers
from torch import nn

from tritone_server.triton.model_config import TensorConfig, render_config
from tritone_tools.hf_import.checkpoint import Checkpoint
from tritone_tools.hf_import.frontends import KaldiFbank, UtteranceNormalizer, WhisperLogMel
from tritone_tools.hf_import.parity import ParityKey
from tritone_tools.hf_import.trace import TRACE_CHECKS, TRACE_SECONDS

__all__ = ["DEFAULT_MAX_BATCH_SIZE", "config_text", "readme_text"]

DEFAULT_MAX_BATCH_SIZE = 8


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
    name: str,
    checkpoint: Checkpoint,
    frontend: nn.Module,
    *,
    parity: Mapping[ParityKey, float],
    trace_error: float,
    tolerance: float,
) -> str:
    """The model card: what was imported, how to feed it, and what was measured at import
    (``parity``: (seconds, input rate) -> largest |score difference| against the pipeline;
    ``trace_error``: largest |traced - eager| logit difference)."""
    labels = ", ".join(f"`{label}`" for label in checkpoint.labels)
    rows = "\n".join(f"| {s:g} s | {r} Hz | {d:.2e} |" for (s, r), d in parity.items())
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
{tolerance:g} (`--tolerance`).

| clip | given at | max abs score difference |
| --- | --- | --- |
{rows}

Traced model against the eager transformers model ({checks}): largest logit
difference {trace_error:.2e}.

## How it was built

`1/model.pt` is `torch.jit.trace` of front end + model (traced once on a
{TRACE_SECONDS:g} s batch of two; lengths and batch sizes stay dynamic), frozen, with every
device constant replaced by the input's device, so it runs on GPU as on CPU.

    tritone import-hf {_ascii(str(checkpoint.path))} --name {name}

## Licence

That of the source checkpoint.
"""
