"""derive_python_backend_repository, the config rewrite, and the tones model in-process."""

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch

from tritone_server.triton.derived_repository import (
    derive_python_backend_repository,
    to_python_backend_config,
)
from tritone_server.triton.torchscript import quiet_torchscript

REPOSITORY = Path(__file__).resolve().parents[4] / "model_repository"
TONES = REPOSITORY / "tones"
LABELS = [
    "tone_250",
    "tone_354",
    "tone_500",
    "tone_707",
    "tone_1000",
    "tone_1414",
    "tone_2000",
    "tone_2828",
]
CENTRES = [250.0 * 2.0 ** (k / 2) for k in range(8)]
RATE = 16_000


def _strip_instance_group(text: str) -> str:
    return re.sub(r"instance_group \[[^\]]*\]", "", text)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    repository = tmp_path / "src"
    shutil.copytree(TONES, repository / "tones")
    return repository


def test_derived_repository_runs_torchscript_with_the_python_backend(
    source: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "derived"
    assert derive_python_backend_repository(source, dest, use_gpu=False) == ["tones"]

    original = (source / "tones" / "config.pbtxt").read_text()
    config = (dest / "tones" / "config.pbtxt").read_text()
    assert 'backend: "python"' in config
    assert "platform" not in config
    assert "kind: KIND_CPU" in config
    assert "KIND_GPU" not in config
    # Everything but the engine and the instance kind is kept as written.
    expected = original.replace('platform: "pytorch_libtorch"', 'backend: "python"')
    assert config == expected.replace("KIND_GPU", "KIND_CPU")
    for kept in (
        'name: "tones"',
        "max_batch_size: 64",
        '{ name: "waveform" data_type: TYPE_FP32 dims: [ -1 ] }',
        'label_filename: "labels.txt"',
        "dynamic_batching { max_queue_delay_microseconds: 1000 }",
        'parameters { key: "window_samples" value: { string_value: "8000" } }',
    ):
        assert kept in config

    version = dest / "tones" / "1"
    assert (version / "model.py").read_text().startswith("# mypy: ignore-errors")
    assert (version / "model.pt").read_bytes() == (TONES / "1" / "model.pt").read_bytes()
    assert (dest / "tones" / "labels.txt").read_text().split() == LABELS


def test_derive_keeps_gpu_groups_when_asked(source: Path, tmp_path: Path) -> None:
    derive_python_backend_repository(source, tmp_path / "gpu", use_gpu=True)
    config = (tmp_path / "gpu" / "tones" / "config.pbtxt").read_text()
    assert "kind: KIND_GPU" in config
    assert 'backend: "python"' in config


def test_derive_replaces_a_previous_derivation(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "derived"
    derive_python_backend_repository(source, dest, use_gpu=False)
    (dest / "tones" / "stale.txt").write_text("old")
    derive_python_backend_repository(source, dest, use_gpu=False)
    assert not (dest / "tones" / "stale.txt").exists()


def test_derive_skips_directories_without_config(source: Path, tmp_path: Path) -> None:
    (source / "notes").mkdir()
    assert derive_python_backend_repository(source, tmp_path / "d", use_gpu=False) == ["tones"]


def test_derive_follows_default_model_filename(source: Path, tmp_path: Path) -> None:
    config = source / "tones" / "config.pbtxt"
    config.write_text(config.read_text() + 'default_model_filename: "tones.pt"\n')
    (source / "tones" / "1" / "model.pt").rename(source / "tones" / "1" / "tones.pt")
    derive_python_backend_repository(source, tmp_path / "d", use_gpu=False)
    assert (tmp_path / "d" / "tones" / "1" / "model.pt").is_file()
    assert "default_model_filename" not in (tmp_path / "d" / "tones" / "config.pbtxt").read_text()


def test_config_rewrite_leaves_strings_and_comments_alone() -> None:
    text = (
        '# platform: "pytorch_libtorch" in a comment, kind: KIND_GPU\n'
        'name: "m"\n'
        'platform: "pytorch_libtorch"\n'
        "instance_group [\n"
        "  { kind: KIND_GPU count: 2 gpus: [ 0, 1 ] },\n"
        "  { kind:KIND_CPU }\n"
        "]\n"
        'parameters { key: "description" value: { string_value: '
        '"was platform: \\"pytorch_libtorch\\", kind: KIND_GPU" } }\n'
    )
    out = to_python_backend_config(text, use_gpu=False)
    assert out.splitlines()[0] == text.splitlines()[0]
    assert 'backend: "python"\n' in out
    assert "{ kind: KIND_CPU count: 2  }" in out
    assert "{ kind:KIND_CPU }" in out
    assert out.splitlines()[-1] == text.splitlines()[-1]


def test_config_rewrite_refuses_other_platforms() -> None:
    with pytest.raises(ValueError, match="onnxruntime_onnx"):
        to_python_backend_config('platform: "onnxruntime_onnx"\n', use_gpu=False)
    with pytest.raises(ValueError, match="no platform"):
        to_python_backend_config('name: "m"\n', use_gpu=False)


def test_config_rewrite_accepts_the_pytorch_backend_spelling() -> None:
    out = to_python_backend_config('backend: "pytorch"\nmax_batch_size: 8\n', use_gpu=True)
    assert out == 'backend: "python"\nmax_batch_size: 8\n'


# --- the tones model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tones() -> torch.jit.ScriptModule:
    with quiet_torchscript():
        module = torch.jit.load(str(TONES / "1" / "model.pt"), map_location="cpu")  # type: ignore[no-untyped-call]
    assert isinstance(module, torch.jit.ScriptModule)
    return module


def _tone(freq: float, samples: int) -> torch.Tensor:
    t = torch.arange(samples, dtype=torch.float64) / RATE
    return (0.5 * torch.sin(2 * math.pi * freq * t)).float()


def _run(module: torch.jit.ScriptModule, batch: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        out = module(batch)
    assert isinstance(out, torch.Tensor)
    return out


def test_labels_file_and_config_parameter_agree() -> None:
    assert (TONES / "labels.txt").read_text().splitlines() == LABELS
    match = re.search(
        r'key: "labels" value: \{ string_value: ("(?:[^"\\]|\\.)*") \}',
        (TONES / "config.pbtxt").read_text(),
    )
    assert match is not None
    assert json.loads(json.loads(match.group(1))) == LABELS


@pytest.mark.parametrize("band", range(8))
def test_each_band_centre_classifies_to_its_label(tones: torch.jit.ScriptModule, band: int) -> None:
    logits = _run(tones, _tone(CENTRES[band], RATE // 2).unsqueeze(0))
    assert logits.shape == (1, 8)
    assert logits.dtype == torch.float32
    scores = torch.softmax(logits, dim=-1)[0]
    assert LABELS[int(scores.argmax())] == LABELS[band]
    assert float(scores[band]) >= 0.9


def test_padded_batch_of_different_lengths(tones: torch.jit.ScriptModule) -> None:
    lengths = [8000, 5000, 2000]
    bands = [1, 4, 7]
    batch = torch.zeros(3, 8000)
    for row, (length, band) in enumerate(zip(lengths, bands, strict=True)):
        batch[row, :length] = _tone(CENTRES[band], length)
    logits = _run(tones, batch)
    assert logits.shape == (3, 8)
    assert logits.argmax(dim=-1).tolist() == bands


@pytest.mark.parametrize("samples", [1, 2, 3, 100, 8000])
def test_silence_and_tiny_inputs_give_finite_logits(
    tones: torch.jit.ScriptModule, samples: int
) -> None:
    silence = _run(tones, torch.zeros(2, samples))
    assert silence.shape == (2, 8)
    assert bool(torch.isfinite(silence).all())
    noise = _run(tones, torch.linspace(-1.0, 1.0, samples).unsqueeze(0))
    assert bool(torch.isfinite(noise).all())


def test_batch_rows_are_independent(tones: torch.jit.ScriptModule) -> None:
    a = _tone(CENTRES[2], 8000)
    b = _tone(CENTRES[6], 8000)
    together = _run(tones, torch.stack([a, b]))
    alone = _run(tones, a.unsqueeze(0))
    torch.testing.assert_close(together[0], alone[0])
