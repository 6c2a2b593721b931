"""`tritone train` end to end on a tiny scripted stand-in for the speaker-embedding backbone.

The stand-in maps a whole clip to its normalised spectrum in 16 bands, so tones of different
frequencies behave like different speakers. (The real backbone is exercised by
tests/integration/test_train_evaluate.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import soxr
import torch
from google.protobuf import json_format, text_format
from torch import Tensor, nn
from tritonclient.grpc import model_config_pb2

from tritone_server.core.models import spec_from_config
from tritone_server.triton.torchscript import quiet_torchscript
from tritone_tools.training import cli
from tritone_tools.training.export import UNKNOWN_SCALE, FusedModel, script

RATE = 16000


class SpectrumBands(nn.Module):
    def forward(self, waveform: Tensor) -> Tensor:
        spectrum = torch.fft.rfft(waveform).abs().unsqueeze(1)
        bands = torch.nn.functional.adaptive_avg_pool1d(spectrum, 16).squeeze(1)
        norm = torch.linalg.vector_norm(bands, 2.0, dim=1, keepdim=True).clamp_min(1e-9)
        out: Tensor = bands / norm
        return out


def write_backbone(repository: Path) -> None:
    (repository / "speaker-embedding" / "1").mkdir(parents=True)
    with quiet_torchscript():
        torch.jit.save(
            torch.jit.script(SpectrumBands()),
            str(repository / "speaker-embedding" / "1" / "model.pt"),
        )


def tone(freq: float, seconds: float, seed: int) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    x: npt.NDArray[np.float32] = (
        0.5 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.normal(size=t.size)
    ).astype(np.float32)
    return x


def write_speakers(root: Path, speakers: dict[str, float], clips: int = 6) -> None:
    for label, freq in speakers.items():
        (root / label).mkdir(parents=True)
        for i in range(clips):
            # Different rates and containers on purpose: training resamples to 16 kHz.
            rate = 22050 if i % 2 else RATE
            x = tone(freq * (1 + 0.01 * i), 0.5 + 0.1 * i, seed=i)
            if rate != RATE:
                x = soxr.resample(x, RATE, rate).astype(np.float32)
            sf.write(root / label / f"{i}.{'flac' if i % 2 else 'wav'}", x, rate)


def load(path: Path) -> torch.jit.ScriptModule:
    with quiet_torchscript():
        module: torch.jit.ScriptModule = torch.jit.load(  # type: ignore[no-untyped-call]
            str(path), map_location="cpu"
        )
    return module.eval()


def test_train_writes_a_servable_model_directory_with_unknown(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_backbone(repository)
    write_speakers(tmp_path / "data", {"low": 300.0, "mid": 1200.0, "high": 3000.0})
    status = cli.main(
        [
            str(tmp_path / "data"),
            "--backbone",
            "speaker-embedding",
            "--name",
            "tones-id",
            "--repository",
            str(repository),
            "--quiet",
            "--test-fraction",
            "0",  # six clips a label: all of them train or validate here
        ]
    )
    assert status == 0
    model_dir = repository / "tones-id"
    labels = (model_dir / "labels.txt").read_text().splitlines()
    assert labels == ["high", "low", "mid", "unknown"]
    message = model_config_pb2.ModelConfig()
    text_format.Parse((model_dir / "config.pbtxt").read_text(), message)
    config = json_format.MessageToDict(message, preserving_proto_field_name=True)
    assert config["platform"] == "pytorch_libtorch"
    assert [g["kind"] for g in config["instance_group"]] == ["KIND_GPU"]
    spec = spec_from_config(config, "1")
    assert spec.labels == tuple(labels) and spec.window_samples == 0 and spec.sample_rate == RATE
    assert json.loads(config["parameters"]["labels"]["string_value"]) == labels
    card = (model_dir / "README.md").read_text()
    for needle in ("Accuracy: **1.0000**", "| macro avg |", "true \\ predicted", "unknown"):
        assert needle in card
    assert "## Test split\n\nNone (`--test-fraction 0`" in card
    threshold = float(config["parameters"]["unknown_threshold"]["string_value"])
    assert f"**{threshold:.4f}**" in card
    assert not [p for p in repository.iterdir() if p.name.startswith(".")], "no staging left"

    model = load(model_dir / "1" / "model.pt")
    with torch.inference_mode():
        for freq, label in ((310.0, "low"), (1190.0, "mid"), (3060.0, "high"), (6500.0, "unknown")):
            logits = model(torch.from_numpy(tone(freq, 0.7, seed=99))[None])
            assert labels[int(logits.argmax())] == label, freq


def test_errors_are_reported_and_existing_models_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repository = tmp_path / "models"
    write_backbone(repository)
    write_speakers(tmp_path / "one", {"solo": 300.0})
    args = ["--backbone", "speaker-embedding", "--repository", str(repository), "--quiet"]
    assert cli.main([str(tmp_path / "one"), "--name", "x", *args]) == 1
    assert "at least 2 labels" in capsys.readouterr().err
    assert cli.main([str(tmp_path / "one"), "--name", "../x", *args]) == 1
    assert "model name '../x'" in capsys.readouterr().err
    assert cli.main([str(tmp_path / "one"), "--name", "speaker-embedding", *args]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (
        cli.main(
            [
                str(tmp_path / "one"),
                "--name",
                "y",
                "--backbone",
                "speaker-embedding",
                "--repository",
                str(tmp_path / "empty"),
                "--quiet",
            ]
        )
        == 1
    )
    assert "model.pt is missing" in capsys.readouterr().err
    assert not (repository / "x").exists() and not (repository / "y").exists()


def test_the_unknown_logit_wins_exactly_below_the_threshold() -> None:
    class Identity(nn.Module):
        def forward(self, waveform: Tensor) -> Tensor:
            return waveform

    class Fixed(nn.Module):
        def forward(self, features: Tensor) -> Tensor:
            return features * 4.0

    centroids = torch.eye(2)
    model = script(FusedModel(Identity(), Fixed(), centroids, threshold=0.8))
    # cos with centroid 0 of [cos a, sin a] is cos a.
    angles = torch.linspace(0.0, 0.7, 50)
    x = torch.stack([angles.cos(), angles.sin()], dim=1)
    logits = model(x)
    assert logits.shape == (50, 3)
    rejected = logits.argmax(dim=1) == 2
    assert torch.equal(rejected, angles.cos() < 0.8)
    expected = logits[:, :2].max(dim=1).values + UNKNOWN_SCALE * (0.8 - angles.cos())
    assert torch.allclose(logits[:, 2], expected, atol=1e-5)
    plain = script(FusedModel(Identity(), Fixed()))
    assert plain(x).shape == (50, 2)


def test_a_clip_near_any_enrolled_centroid_is_not_unknown() -> None:
    """The README's rule: `unknown` only when far from *every* enrolled speaker. A clip the
    head ranks as label 0 but that sits on label 1's centroid is accepted; one far from
    both is rejected."""

    class Identity(nn.Module):
        def forward(self, waveform: Tensor) -> Tensor:
            return waveform

    class PrefersLabelZero(nn.Module):
        def forward(self, features: Tensor) -> Tensor:
            return torch.stack([torch.ones(features.shape[0]), torch.zeros(features.shape[0])], 1)

    model = script(FusedModel(Identity(), PrefersLabelZero(), torch.eye(3)[:2], threshold=0.8))
    near_one = torch.tensor([[0.0, 1.0, 0.0]])
    far = torch.tensor([[0.3, 0.3, 0.9]])
    assert int(model(near_one).argmax(dim=1)) == 0  # accepted (the head's label)
    assert int(model(far).argmax(dim=1)) == 2  # unknown


def test_an_unknown_folder_only_calibrates_the_threshold(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    write_backbone(repository)
    write_speakers(tmp_path / "data", {"low": 300.0, "high": 3000.0, "unknown": 1500.0})
    argv = [str(tmp_path / "data"), "--backbone", "speaker-embedding", "--name", "m"]
    assert cli.main([*argv, "--repository", str(repository), "--quiet"]) == 0
    labels = (repository / "m" / "labels.txt").read_text().splitlines()
    assert labels == ["high", "low", "unknown"]
    card = (repository / "m" / "README.md").read_text()
    # One of the six `unknown` clips (round(0.2 * 6)) tests the threshold, five calibrate it.
    assert "the 5 clips of the data's `unknown` folder" in card
    assert "| unknown |" not in card.split("## Validation")[0], "not a trained label"
    tested = card.split("## Test split", 1)[1]
    assert "2 clips held out before training, used for nothing else" in tested
    assert "folder held out from calibration (1, people nobody enrols)" in tested
    assert "| high | 4 | 1 | 1 |" in card
