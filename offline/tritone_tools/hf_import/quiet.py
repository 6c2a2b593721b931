"""Context managers that silence warnings the import knows about and has explained.

Loading extractors, running the reference pipeline and tracing each print warnings that are
expected for these checkpoints; left on, they bury the one line a user needs (what was
measured, what failed). Each filter names the one message it hides and why it is harmless.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

from torch.jit import TracerWarning  # type: ignore[attr-defined]

from tritone_server.triton.torchscript import quiet_torchscript

__all__ = ["quiet_extractor_warnings", "quiet_reference_warnings", "quiet_tracing"]


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
def quiet_tracing() -> Iterator[None]:
    """torch >= 2.10 deprecates TorchScript (Triton's libtorch backend needs it), and the
    tracer warns about Python values it records as constants (the trace checks prove the
    trace general over lengths and batch sizes)."""
    with quiet_torchscript(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=TracerWarning)
        # The tracer probes every attribute of every module; transformers 5 deprecates one.
        warnings.filterwarnings(
            "ignore", r"`is_gradient_checkpointing` is deprecated", FutureWarning
        )
        yield
