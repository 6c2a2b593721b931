"""`tritone import-hf` on tiny checkpoints with the real checkpoints' architecture switches.

Each `VARIANTS` entry copies the config switches of a checkpoint users bring (the stable
layer-norm conv encoder of facebook/mms-lid-126 and HuBERT large, the group-norm base
encoder and the 12 Speech Commands labels of superb/wav2vec2-base-superb-ks, AST's 1024
frames with multi-label sigmoid scores, Whisper's 30 s encoder with 128 mel bins) at tiny
sizes. Each is imported with the enforced parity check, and the file written is compared
with the transformers model (float64 reference, support/hf_reference.py) at 1, 3.7, 10 and
35 s given at 8, 16 and 44.1 kHz (resampled to 16 kHz as the gateway does, both sides).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from support.hf_reference import reference_logits
from tritone_server.audio.dsp import resample
from tritone_server.triton.torchscript import quiet_torchscript
from tritone_tools.hf_import.clips import parity_signal
from tritone_tools.hf_import.export import ExportResult, export_checkpoint
from tritone_tools.hf_import.parity import DEFAULT_TOLERANCE
from tritone_tools.hf_import.tiny import VARIANTS, write_tiny_variant

SECONDS = (1.0, 3.7, 10.0, 35.0)
RATES = (8_000, 16_000, 44_100)

pytestmark = pytest.mark.usefixtures("torch_threads_for_tests")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, ExportResult]]:
    """variant -> (checkpoint directory, what import-hf wrote)."""
    root = tmp_path_factory.mktemp("hf-variants")
    done = {}
    for name in VARIANTS:
        source = write_tiny_variant(name, root / "checkpoints" / name)
        done[name] = (source, export_checkpoint(source, name, root / "repo", progress=False))
    return done


def _load(path: Path) -> Any:
    with quiet_torchscript():
        return torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_checkpoint_carries_the_real_switches(
    name: str, imported: dict[str, tuple[Path, ExportResult]]
) -> None:
    source, result = imported[name]
    variant = VARIANTS[name]
    config = json.loads((source / "config.json").read_text())
    for key, value in variant.switches.items():
        assert config[key] == value, key
    extractor = json.loads((source / "preprocessor_config.json").read_text())
    for key, value in variant.extractor_switches.items():
        assert extractor[key] == value, key
    assert config["architectures"] == [variant.architecture]
    assert result.labels == variant.labels
    assert max(result.parity.values()) <= DEFAULT_TOLERANCE


@pytest.mark.parametrize("name", list(VARIANTS))
def test_parity_at_every_length_and_rate(
    name: str, imported: dict[str, tuple[Path, ExportResult]]
) -> None:
    source, result = imported[name]
    model = _load(result.directory / "1" / "model.pt")
    for seconds in SECONDS:
        for rate in RATES:
            audio = resample(parity_signal(seconds, rate, seed=4), rate, 16_000)[None]
            with torch.inference_mode():
                got = model(torch.from_numpy(audio)).numpy()
            reference_logits(source, audio).check(got)


def test_multi_label_checkpoints_score_with_sigmoid_and_a_clip_carries_several_labels(
    imported: dict[str, tuple[Path, ExportResult]],
) -> None:
    _, result = imported["ast-audioset"]
    assert result.activation == "sigmoid"
    assert "activation" in (result.directory / "config.pbtxt").read_text()
    assert '"sigmoid"' in (result.directory / "config.pbtxt").read_text()
    model = _load(result.directory / "1" / "model.pt")
    clips = np.stack([parity_signal(4.0, 16_000, seed) for seed in range(4)])
    with torch.inference_mode():
        scores = torch.sigmoid(model(torch.from_numpy(clips))).numpy()
    above = (scores >= 0.5).sum(axis=1)
    assert above.max() >= 2, scores
    assert not np.allclose(scores.sum(axis=1), 1.0, atol=0.05)
    for name in ("mms-lid-126", "hubert-large-superb-er", "wav2vec2-base-superb-ks"):
        assert imported[name][1].activation == "softmax"
