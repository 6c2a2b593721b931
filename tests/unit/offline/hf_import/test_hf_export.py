"""`tritone import-hf` export: traced models equal the transformers models and name no device.

Tiny randomly initialised checkpoints of every supported architecture are made locally
(nothing is downloaded) once per session.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch
import transformers
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from support.hf_reference import reference_logits
from tritone_server.core.models import spec_from_config
from tritone_server.triton.torchscript import device_constants
from tritone_tools.hf_import.checkpoint import (
    SUPPORTED_ARCHITECTURES,
    ImportHFError,
    load_checkpoint,
)
from tritone_tools.hf_import.classifier import build_classifier
from tritone_tools.hf_import.cli import main
from tritone_tools.hf_import.clips import parity_signal
from tritone_tools.hf_import.export import export_checkpoint
from tritone_tools.hf_import.parity import DEFAULT_TOLERANCE
from tritone_tools.hf_import.tiny import TINY_LABELS, write_tiny_checkpoint
from tritone_tools.hf_import.trace import trace_classifier

pytestmark = pytest.mark.usefixtures("torch_threads_for_tests")

FloatArray = npt.NDArray[np.float32]
# Parity is checked against a float64 run of the transformers model, with a tolerance set by
# that model's own float32 error on this machine (support/hf_reference.py says why).


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf-checkpoints")
    return {arch: write_tiny_checkpoint(arch, root / arch) for arch in SUPPORTED_ARCHITECTURES}


@pytest.mark.parametrize("architecture", SUPPORTED_ARCHITECTURES)
def test_traced_model_equals_the_transformers_model(
    architecture: str, checkpoints: dict[str, Path]
) -> None:
    checkpoint = load_checkpoint(checkpoints[architecture])
    assert checkpoint.labels == TINY_LABELS
    traced = trace_classifier(build_classifier(checkpoint), 16_000)
    assert device_constants(traced) == []
    schema = traced.forward.schema  # type: ignore[attr-defined]
    assert [arg.name for arg in schema.arguments][1:] == ["waveform"]
    # Traced at 2 s (batch 2): other lengths and batch sizes, each against the HF model.
    for seconds, batch in ((0.5, 1), (3.7, 3), (10.0, 1)):
        audio = np.stack([parity_signal(seconds, 16_000, seed) for seed in range(batch)])
        with torch.inference_mode():
            got = traced(torch.from_numpy(audio)).numpy()
        assert got.shape == (batch, len(TINY_LABELS))
        reference_logits(checkpoints[architecture], audio).check(got)


def test_the_trace_records_devices_that_the_export_removes(checkpoints: dict[str, Path]) -> None:
    """Transformers creates tensors on the device of a weight; a bare trace bakes in "cpu"
    (WavLM's relative positions: an arange over the input's length)."""
    from tritone_server.triton.torchscript import device_constant_nodes
    from tritone_tools.hf_import.quiet import quiet_tracing

    classifier = build_classifier(load_checkpoint(checkpoints["WavLMForSequenceClassification"]))
    with torch.no_grad(), quiet_tracing():
        bare = torch.jit.freeze(
            torch.jit.trace(classifier, torch.zeros(1, 16_000), check_trace=False),  # type: ignore[no-untyped-call]
            optimize_numerics=False,
        )
    assert device_constant_nodes(bare.graph)
    assert device_constants(trace_classifier(classifier, 16_000)) == []


def _parse_config(text: str) -> dict[str, object]:
    message = model_config_pb2.ModelConfig()
    text_format.Parse(text, message)
    config: dict[str, object] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return config


def test_export_writes_a_model_directory_the_gateway_reads(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    source = checkpoints["ASTForAudioClassification"]
    result = export_checkpoint(source, "ast-tiny", tmp_path, progress=False)
    directory = tmp_path / "ast-tiny"
    assert result.directory == directory
    assert sorted(p.name for p in directory.iterdir()) == [
        "1",
        "README.md",
        "config.pbtxt",
        "labels.txt",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    text = (directory / "config.pbtxt").read_text()
    assert 'platform: "pytorch_libtorch"' in text
    assert "KIND_GPU" in text
    assert "max_batch_size: 8" in text
    assert "equal-length clips only" in text
    config = _parse_config(text)
    spec = spec_from_config(config, "1")
    assert spec.labels == TINY_LABELS
    assert (spec.sample_rate, spec.window_samples, spec.hop_samples) == (16_000, 0, 0)
    assert (spec.activation, spec.aggregation, spec.min_samples) == ("softmax", "mean", 400)
    assert spec.task == "audio-classification"
    assert "ASTForAudioClassification" in spec.description
    assert str(source) in spec.description
    assert (directory / "labels.txt").read_text().splitlines() == list(TINY_LABELS)
    readme = (directory / "README.md").read_text()
    for needle in (
        str(source),
        "ASTForAudioClassification",
        "Kaldi",
        "| 3.7 s | 16000 Hz |",
        "| 3 s | 44100 Hz |",
        "siren",
    ):
        assert needle in readme
    assert set(result.parity) == {
        (1.0, 16_000),
        (3.7, 16_000),
        (10.0, 16_000),
        (3.0, 8_000),
        (3.0, 44_100),
    }
    assert max(result.parity.values()) <= DEFAULT_TOLERANCE
    # The file on disk is what Triton runs: no device in it, same outputs.
    with pytest.warns(DeprecationWarning, match="torch.jit"):
        loaded = torch.jit.load(str(directory / "1" / "model.pt"))  # type: ignore[no-untyped-call]
    assert device_constants(loaded) == []
    audio = parity_signal(3.7)[None]
    with torch.inference_mode():
        got = loaded(torch.from_numpy(audio)).numpy()
    reference_logits(source, audio).check(got)


def test_multi_label_checkpoints_get_sigmoid(tmp_path: Path) -> None:
    source = write_tiny_checkpoint(
        "ASTForAudioClassification",
        tmp_path / "ckpt",
        problem_type="multi_label_classification",
    )
    export_checkpoint(source, "multi", tmp_path / "repo", max_batch_size=4, progress=False)
    text = (tmp_path / "repo" / "multi" / "config.pbtxt").read_text()
    spec = spec_from_config(_parse_config(text), "1")
    assert (spec.activation, spec.max_batch_size) == ("sigmoid", 4)


def test_whisper_with_128_mel_bins(tmp_path: Path) -> None:
    source = write_tiny_checkpoint(
        "WhisperForAudioClassification", tmp_path / "ckpt", whisper_mels=128
    )
    checkpoint = load_checkpoint(source)
    traced = trace_classifier(build_classifier(checkpoint), 16_000)
    audio = parity_signal(1.0)[None]
    with torch.inference_mode():
        got = traced(torch.from_numpy(audio)).numpy()
    reference_logits(source, audio).check(got)
    assert checkpoint.min_samples == 1


def test_min_samples_is_the_conv_receptive_field(checkpoints: dict[str, Path]) -> None:
    for arch in SUPPORTED_ARCHITECTURES[:3]:
        assert load_checkpoint(checkpoints[arch]).min_samples == 400


def _copy(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination)
    return destination


def test_unsupported_architecture_names_the_supported_ones(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    source = _copy(checkpoints["Wav2Vec2ForSequenceClassification"], tmp_path / "ctc")
    config = json.loads((source / "config.json").read_text())
    config["architectures"] = ["Wav2Vec2ForCTC"]
    (source / "config.json").write_text(json.dumps(config))
    with pytest.raises(ImportHFError, match="Wav2Vec2ForCTC is not supported") as caught:
        load_checkpoint(source)
    for arch in SUPPORTED_ARCHITECTURES:
        assert arch in str(caught.value)


def test_missing_preprocessor_config_says_so(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _copy(checkpoints["HubertForSequenceClassification"], tmp_path / "bare")
    (source / "preprocessor_config.json").unlink()
    status = main(
        [str(source), "--name", "bare", "--repository", str(tmp_path / "repo"), "--quiet"]
    )
    assert status == 1
    assert "has no preprocessor_config.json" in capsys.readouterr().err
    assert not (tmp_path / "repo").exists()


def test_mismatched_feature_extractor_is_refused(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    source = _copy(checkpoints["WhisperForAudioClassification"], tmp_path / "mixed")
    shutil.copy(
        checkpoints["ASTForAudioClassification"] / "preprocessor_config.json",
        source / "preprocessor_config.json",
    )
    with pytest.raises(ImportHFError, match="needs a WhisperFeatureExtractor"):
        load_checkpoint(source)


def test_usage_errors(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(checkpoints["ASTForAudioClassification"])
    assert main([str(tmp_path / "nowhere"), "--name", "x", "--repository", str(tmp_path)]) == 1
    assert "is not a directory" in capsys.readouterr().err
    assert main([source, "--name", "../x", "--repository", str(tmp_path), "--quiet"]) == 1
    assert "is not usable" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    assert main([source, "--name", "taken", "--repository", str(tmp_path), "--quiet"]) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([source, "--name", "x", "--max-batch-size", "0"])
    with pytest.raises(SystemExit):
        main([source])  # --name is required


def test_overwrite_replaces_the_directory(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    source = str(checkpoints["ASTForAudioClassification"])
    (tmp_path / "ast" / "1").mkdir(parents=True)
    (tmp_path / "ast" / "stale.txt").write_text("old")
    args = [source, "--name", "ast", "--repository", str(tmp_path), "--quiet", "--overwrite"]
    assert main(args) == 0
    assert not (tmp_path / "ast" / "stale.txt").exists()
    assert (tmp_path / "ast" / "1" / "model.pt").is_file()


def test_a_triton_folder_on_sys_path_does_not_break_the_import(tmp_path: Path) -> None:
    """torch._dynamo (imported by transformers) takes a bare `triton` folder for Triton."""
    (tmp_path / "triton").mkdir()
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import tritone_tools.hf_import
        from transformers import Wav2Vec2ForSequenceClassification
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_transformers_is_the_one_the_project_pins() -> None:
    assert int(transformers.__version__.split(".")[0]) == 5


class _Perturbed(torch.nn.Module):
    """A front end 2 % off: what a subtly wrong feature extraction looks like."""

    def __init__(self, frontend: torch.nn.Module) -> None:
        super().__init__()
        self.frontend = frontend

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.frontend(waveform)
        return features * 1.02


def test_a_perturbed_export_fails_with_the_measured_difference(
    checkpoints: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tritone_tools.hf_import import classifier

    original = classifier.build_frontend
    monkeypatch.setattr(classifier, "build_frontend", lambda c: _Perturbed(original(c)))
    source = str(checkpoints["ASTForAudioClassification"])
    status = main([source, "--name", "off", "--repository", str(tmp_path), "--quiet"])
    assert status == 1
    err = capsys.readouterr().err
    assert "differ from transformers.pipeline('audio-classification') by up to" in err
    assert "more than the tolerance 0.0001; nothing was written" in err
    measured = float(err.split("by up to ")[1].split(" ")[0])
    assert measured > DEFAULT_TOLERANCE
    assert not (tmp_path / "off").exists()
    assert not list(tmp_path.iterdir())


def test_the_tolerance_is_enforced_and_reported(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real export passes the default and says what it measured; a tolerance below what
    float32 can reach (0) fails it, naming the same figure."""
    source = str(checkpoints["HubertForSequenceClassification"])
    args = [source, "--name", "hubert", "--repository", str(tmp_path), "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "vs the transformers pipeline (tolerance 0.0001): 1 s at 16000 Hz" in out
    assert "3 s at 8000 Hz" in out and "3 s at 44100 Hz" in out
    assert main([*args, "--overwrite", "--tolerance", "0"]) == 1
    err = capsys.readouterr().err
    assert "more than the tolerance 0; nothing was written" in err
    assert (tmp_path / "hubert" / "1" / "model.pt").is_file()  # the first import stays
    with pytest.raises(SystemExit):
        main([*args, "--tolerance", "nan"])
