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

from tritone_server.core.models import spec_from_config
from tritone_server.hf_import.cli import main
from tritone_server.hf_import.export import (
    SUPPORTED_ARCHITECTURES,
    ImportHFError,
    build_classifier,
    device_constants,
    export_checkpoint,
    load_checkpoint,
    parity_signal,
    quiet_extractor_warnings,
    trace_classifier,
)
from tritone_server.hf_import.tiny import TINY_LABELS, write_tiny_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FloatArray = npt.NDArray[np.float32]
TOLERANCE = 1e-4
"""Absolute, plus the same relative: the tiny heads are calibrated to spread their logits,
which amplifies float32 rounding (batch 3 vs clip by clip differs by ~1e-4 at logit 2.4)."""


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf-checkpoints")
    return {arch: write_tiny_checkpoint(arch, root / arch) for arch in SUPPORTED_ARCHITECTURES}


def _hf_logits(checkpoint_dir: Path, audio: FloatArray) -> FloatArray:
    """The transformers model on what its own feature extractor makes, clip by clip."""
    checkpoint = load_checkpoint(checkpoint_dir)
    rows = []
    for clip in np.atleast_2d(audio):
        with quiet_extractor_warnings():
            features = checkpoint.feature_extractor(  # type: ignore[operator]
                clip, sampling_rate=16_000, return_tensors="pt"
            )
        features.pop("attention_mask", None)
        with torch.inference_mode():
            rows.append(checkpoint.model(**features).logits.numpy())
    return np.concatenate(rows)


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
        expected = _hf_logits(checkpoints[architecture], audio)
        assert got.shape == (batch, len(TINY_LABELS))
        np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=TOLERANCE)


def test_the_trace_records_devices_that_the_export_removes(checkpoints: dict[str, Path]) -> None:
    """Transformers creates tensors on the device of a weight; a bare trace bakes in "cpu"
    (WavLM's relative positions: an arange over the input's length)."""
    from tritone_server.hf_import.export import _quiet_tracing
    from tritone_server.triton.torchscript import device_constant_nodes

    classifier = build_classifier(load_checkpoint(checkpoints["WavLMForSequenceClassification"]))
    with torch.no_grad(), _quiet_tracing():
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
    for needle in (str(source), "ASTForAudioClassification", "Kaldi", "| 3.7 s |", "siren"):
        assert needle in readme
    assert set(result.parity) == {1.0, 3.7, 10.0}
    assert max(result.parity.values()) < 1e-3
    # The file on disk is what Triton runs: no device in it, same outputs.
    with pytest.warns(DeprecationWarning, match="torch.jit"):
        loaded = torch.jit.load(str(directory / "1" / "model.pt"))  # type: ignore[no-untyped-call]
    assert device_constants(loaded) == []
    audio = parity_signal(3.7)[None]
    with torch.inference_mode():
        got = loaded(torch.from_numpy(audio)).numpy()
    np.testing.assert_allclose(got, _hf_logits(source, audio), atol=TOLERANCE, rtol=TOLERANCE)


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
    np.testing.assert_allclose(got, _hf_logits(source, audio), atol=TOLERANCE, rtol=TOLERANCE)
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
        import tritone_server.hf_import
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
