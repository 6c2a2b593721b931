"""A local Hugging Face audio-classification checkpoint -> one Triton model directory.

The model written takes the raw mono waveform, FP32 [batch, samples] at the feature
extractor's rate (16 kHz for every supported family), and returns logits FP32 [batch,
labels]: the feature extraction runs inside it (`frontends`), so the gateway sends audio and
nothing else. This module runs the steps in order, each from the module named, and writes
the result; any step that fails raises ImportHFError and nothing is written:

1. `checkpoint`: load the checkpoint and its feature extractor (local files only; nothing is
   downloaded);
2. `classifier`, `trace`: wrap front end + model in `HFAudioClassifier` and trace it with
   `torch.jit.trace` (these models do not script; traced once on a 2 s batch of two, the
   graph keeps lengths and batch sizes dynamic);
3. `trace`: freeze the trace (one graph, no submodules) and replace every device constant
   the trace recorded (transformers creates tensors "on the device of" some weight or
   activation, e.g. Whisper's position ids, WavLM's relative positions, wav2vec2's
   positional conv) with the device of the input waveform, so the file runs on GPU although
   it was traced on CPU;
4. `trace`, `parity`: check the trace against the eager model at several lengths and batch
   sizes, and measure the scores against ``transformers.pipeline("audio-classification")``
   (`PARITY_CASES`: 1 s, 3.7 s and 10 s at the model's rate, 3 s at 8 kHz and at 44.1 kHz
   resampled as the gateway resamples); refuse the import when any differs by more than the
   tolerance;
5. `repository_files` (the texts), here: write config.pbtxt, labels.txt, 1/model.pt and a
   README.md card, atomically.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from tritone_server.core.models import Activation
from tritone_tools.hf_import.checkpoint import Checkpoint, ImportHFError, load_checkpoint
from tritone_tools.hf_import.classifier import build_classifier
from tritone_tools.hf_import.parity import (
    DEFAULT_TOLERANCE,
    ParityKey,
    check_parity,
    measure_parity,
)
from tritone_tools.hf_import.repository_files import (
    DEFAULT_MAX_BATCH_SIZE,
    config_text,
    readme_text,
)
from tritone_tools.hf_import.trace import (
    TRACE_TOLERANCE,
    measure_trace_error,
    save_and_load,
    trace_classifier,
)

__all__ = ["ExportResult", "export_checkpoint"]

_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


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
        trace_error = measure_trace_error(traced, classifier, checkpoint)
        if not trace_error <= TRACE_TOLERANCE:
            raise ImportHFError(
                f"the traced model differs from the eager one by {trace_error:.3g} in logits"
            )
        steps.update()
        steps.set_postfix_str("comparing with the transformers pipeline")
        parity = measure_parity(traced, checkpoint)
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
        data, _ = save_and_load(traced)
        (partial / "1" / "model.pt").write_bytes(data)
        (partial / "config.pbtxt").write_text(
            config_text(target.name, checkpoint, max_batch_size), encoding="utf-8"
        )
        (partial / "labels.txt").write_text(
            "".join(f"{label}\n" for label in checkpoint.labels), encoding="utf-8"
        )
        readme = readme_text(
            target.name,
            checkpoint,
            frontend,
            parity=result.parity,
            trace_error=result.trace_error,
            tolerance=result.tolerance,
        )
        (partial / "README.md").write_text(readme, encoding="utf-8")
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        if target.exists():
            target.rename(old)
        partial.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
