"""Trace the classifier into TorchScript that runs on any device, and check the trace.

These models do not script, so they are traced once (`TRACE_SECONDS`, a batch of two); the
graph keeps lengths and batch sizes dynamic, which `measure_trace_error` checks against the
eager model at other lengths and batch sizes. The trace is frozen (one graph, no submodules)
and every device constant it recorded (transformers creates tensors "on the device of" some
weight or activation, e.g. Whisper's position ids, WavLM's relative positions, wav2vec2's
positional conv) becomes the device of the input waveform, so a file traced on CPU runs on
GPU.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from tritone_server.triton.torchscript import device_constant_nodes, device_constants
from tritone_tools.hf_import.checkpoint import Checkpoint, ImportHFError
from tritone_tools.hf_import.classifier import HFAudioClassifier, run_classifier
from tritone_tools.hf_import.clips import parity_signal
from tritone_tools.hf_import.quiet import quiet_tracing

__all__ = [
    "TRACE_CHECKS",
    "TRACE_SECONDS",
    "TRACE_TOLERANCE",
    "measure_trace_error",
    "save_and_load",
    "trace_classifier",
]

TRACE_SECONDS = 2.0
# (seconds, batch size) at which the trace is checked against the eager model.
TRACE_CHECKS: tuple[tuple[float, int], ...] = ((0.1, 1), (1.0, 3), (3.7, 1), (10.0, 2))
TRACE_TOLERANCE = 1e-3
"""Largest |traced - eager| logit difference accepted; measured ones are ~1e-6."""


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


def save_and_load(module: torch.jit.ScriptModule) -> tuple[bytes, torch.jit.ScriptModule]:
    """The bytes of ``module`` as Triton will read them, and the module loaded back from
    them, so the checks run what Triton runs."""
    buffer = io.BytesIO()
    with quiet_tracing():
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
    with torch.no_grad(), quiet_tracing():
        traced = torch.jit.trace(  # type: ignore[no-untyped-call]
            classifier, example, check_trace=False
        )
        frozen = torch.jit.freeze(traced, optimize_numerics=False)
    _rewrite_device_constants(frozen)
    _, loaded = save_and_load(frozen)
    remaining = device_constants(loaded)
    if remaining:
        raise ImportHFError(
            "the traced model still names a device, so it would not run on GPU: "
            + "; ".join(remaining[:5])
        )
    return loaded


def measure_trace_error(
    traced: torch.jit.ScriptModule, classifier: HFAudioClassifier, checkpoint: Checkpoint
) -> float:
    """Largest |traced - eager| logit difference over TRACE_CHECKS."""
    worst = 0.0
    rate = checkpoint.sample_rate
    for seconds, batch in TRACE_CHECKS:
        n = max(checkpoint.min_samples, round(seconds * rate))
        audio = np.stack([parity_signal(n / rate, rate, seed) for seed in range(batch)])
        diff = np.abs(run_classifier(traced, audio) - run_classifier(classifier, audio)).max()
        worst = max(worst, float(diff))
    return worst
