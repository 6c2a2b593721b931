"""The committed speech-commands model: loads, has the right shapes, its backbone matches
openwakeword's ONNX networks in onnxruntime, and it recognises held-out synthetic voices.

Needs (never skipped): pip onnx, onnxruntime, openwakeword==0.4.0 (--no-deps); apt espeak-ng
and flite.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from recipes.speech_commands import port_openwakeword as port  # noqa: E402
from recipes.speech_commands import synthesize as synth  # noqa: E402
from support.claims import binomial_floor, claim  # noqa: E402
from tritone_server.triton.torchscript import quiet_torchscript  # noqa: E402
from tritone_tools.training import openwakeword  # noqa: E402

MODEL_DIR = REPO / "model_repository" / "speech-commands"
LABELS = (
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
    "unknown",
    "silence",
)


def require_packages(*names: str) -> None:
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        pytest.fail(
            f"missing Python package(s) {missing}: pip install onnx==1.17.0 "
            "onnxruntime==1.20.1 and openwakeword==0.4.0 --no-deps",
            pytrace=False,
        )


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.fail(
            f"missing synthesizer(s) {missing}: apt-get install {' '.join(missing)}", pytrace=False
        )


@pytest.fixture(scope="module")
def model() -> torch.jit.ScriptModule:
    with quiet_torchscript():
        loaded: torch.jit.ScriptModule = torch.jit.load(  # type: ignore[no-untyped-call]
            str(MODEL_DIR / "1" / "model.pt"), map_location="cpu"
        )
    loaded.eval()
    return loaded


def test_labels_file_matches_order() -> None:
    assert tuple((MODEL_DIR / "labels.txt").read_text().split()) == LABELS
    assert tuple(synth.LABELS) == LABELS


@pytest.mark.parametrize("batch", [1, 3])
def test_output_shape(model: torch.jit.ScriptModule, batch: int) -> None:
    x = torch.from_numpy(
        (0.05 * np.random.default_rng(batch).standard_normal((batch, 16000))).astype(np.float32)
    )
    with torch.no_grad():
        out = model(x)
    assert out.shape == (batch, len(LABELS))
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_ported_backbone_matches_onnxruntime() -> None:
    require_packages("onnx", "onnxruntime", "openwakeword")
    folder = openwakeword.openwakeword_models_dir()
    backbone = openwakeword.load_backbone(folder)
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000.0
    clips = [
        (0.3 * rng.uniform(-1, 1, 16000)).astype(np.float32),
        (0.2 * np.sin(2 * np.pi * np.cumsum(np.linspace(100, 6000, 16000)) / 16000)).astype(
            np.float32
        ),
        (0.1 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(16000)).astype(np.float32),
    ]
    for clip in clips:
        assert port.max_abs_difference(backbone, clip, folder) < 1e-4


def test_held_out_voices_are_recognised_as_well_as_the_card_claims(
    model: torch.jit.ScriptModule,
) -> None:
    """Twenty clean held-out clips (two per command): at least the binomial floor of the
    held-out accuracy the card states (support/claims.py)."""
    require_tools("espeak-ng", "flite")
    claimed = claim("held_out_synthetic.json")["accuracy"]
    voices = [
        synth.Voice("flite", "rms", 1.0, 110.0),
        synth.Voice("flite", "awb", 1.0, 110.0),
        synth.Voice("espeak", "en-029", 1.0, 50.0),
        synth.Voice("espeak", "en-us+f4", 1.0, 50.0),
        synth.Voice("espeak", "en+m7", 1.0, 50.0),
    ]
    for v in voices:
        assert v.engine == "espeak" or v.name in synth.FLITE_HELD_OUT
        if v.engine == "espeak":
            accent, _, variant = v.name.partition("+")
            assert accent in synth.HELD_OUT_ACCENTS or variant in synth.HELD_OUT_VARIANTS
    words = LABELS[:10] * 2
    jobs = [(voices[i % len(voices)], word) for i, word in enumerate(words)]
    spoken = synth.synthesize_many(jobs)
    rng = np.random.default_rng(5)
    clips = np.stack([synth.place(0.5 * w, None, center=True) for w in spoken])
    clips += 1e-3 * rng.standard_normal(clips.shape).astype(np.float32)
    with torch.no_grad():
        predicted = model(torch.from_numpy(clips)).argmax(dim=1).tolist()
    said = [LABELS[i] for i in predicted]
    correct = sum(LABELS[p] == w for w, p in zip(words, predicted, strict=True))
    floor = binomial_floor(len(words), claimed)
    assert correct >= floor, (
        f"only {correct} of {len(words)} right (claim {claimed}, floor {floor}): "
        f"{list(zip(words, said, strict=True))}"
    )
