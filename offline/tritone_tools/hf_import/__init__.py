"""`tritone import-hf`: local Hugging Face audio-classification checkpoints -> Triton models.

Supported: Wav2Vec2/HuBERT/WavLM ``...ForSequenceClassification``,
``WhisperForAudioClassification`` and ``ASTForAudioClassification``. The feature extraction
runs inside the exported TorchScript model (`frontends`). The modules, bottom up: `quiet`
(known warnings silenced), `checkpoint` (load and validate), `clips` (the deterministic test
clip), `classifier` (front end + model as one module), `trace` (TorchScript that runs on any
device, checked against eager), `parity` (scores against the transformers pipeline),
`repository_files` (config.pbtxt and the README card), `export` (runs the steps and writes
the model directory); `cli` is the command and `tiny` makes test checkpoints. Needs the
``[hf]`` extra (transformers, tqdm).
"""

from __future__ import annotations

import importlib.util
import sys


def _hide_namespace_triton() -> None:
    """A folder named ``triton`` on sys.path (e.g. in the working directory) is importable as
    an empty namespace package; torch._dynamo, which transformers imports, then takes it for
    the Triton compiler and fails on ``triton.language``. Hide such a folder (never a real
    installed package) before transformers is imported."""
    if "triton" in sys.modules:
        module = sys.modules["triton"]
        if module is not None and getattr(module, "__file__", None) is None:
            sys.modules["triton"] = None  # type: ignore[assignment]
        return
    try:
        spec = importlib.util.find_spec("triton")
    except (ImportError, ValueError):
        return
    if spec is not None and spec.origin in (None, "namespace"):
        sys.modules["triton"] = None  # type: ignore[assignment]


_hide_namespace_triton()
