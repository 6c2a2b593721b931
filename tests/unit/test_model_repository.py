"""Every committed model fits what the gateway expects: config, labels, TorchScript tensors.

CI does not retrain; these checks make sure what is committed is servable as it stands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from tritone_server.core.models import spec_from_config
from tritone_server.triton.torchscript import device_constants, quiet_torchscript

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"
MODELS = sorted(p.name for p in REPOSITORY.iterdir() if (p / "config.pbtxt").is_file())


def config_json(name: str) -> dict[str, Any]:
    """The config as Triton's get_model_config(as_json=True) gives it."""
    message = model_config_pb2.ModelConfig()
    text_format.Parse((REPOSITORY / name / "config.pbtxt").read_text(), message)
    result: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return result


def load(name: str) -> torch.jit.ScriptModule:
    with quiet_torchscript():
        module: torch.jit.ScriptModule = torch.jit.load(  # type: ignore[no-untyped-call]
            str(REPOSITORY / name / "1" / "model.pt"), map_location="cpu"
        )
    return module.eval()


def test_the_repository_has_the_models_the_design_lists() -> None:
    assert {"tones", "voice-activity", "speaker-embedding"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_config_is_production_and_fits_the_gateway(name: str) -> None:
    config = config_json(name)
    assert config["name"] == name
    assert config["platform"] == "pytorch_libtorch"
    assert [g["kind"] for g in config["instance_group"]] == ["KIND_GPU"]
    assert "dynamic_batching" in config
    spec = spec_from_config(config, "1")
    readme = (REPOSITORY / name / "README.md").read_text()
    assert len(readme) > 200, "every model has a card"
    if spec.output_name == "logits":
        labels_file = (REPOSITORY / name / "labels.txt").read_text().splitlines()
        assert tuple(labels_file) == spec.labels
        assert json.loads(config["parameters"]["labels"]["string_value"]) == labels_file


@pytest.mark.parametrize("name", MODELS)
def test_torchscript_takes_and_gives_the_configured_tensors(name: str) -> None:
    config = config_json(name)
    spec = spec_from_config(config, "1")
    module = load(name)
    schema = module.forward.schema  # type: ignore[attr-defined]
    arguments = [a.name for a in schema.arguments][1:]  # after self
    assert arguments == [t["name"] for t in config["input"]]
    batch = 2
    length = spec.window_samples or spec.sample_rate
    runs = 3 if spec.window_runs else 1  # a model taking runs gets three windows at once
    if spec.window_runs:
        length += (runs - 1) * spec.hop_samples
    inputs = [torch.randn(batch, length) * 0.1]
    inputs += [torch.zeros(batch, *s.shape) for s in spec.states]
    with torch.inference_mode():
        out = module(*inputs)
    outputs = out if isinstance(out, tuple) else (out,)
    assert len(outputs) == len(config["output"])
    for tensor, declared in zip(outputs, config["output"], strict=True):
        dims = [runs if int(d) == -1 else int(d) for d in declared["dims"]]
        assert list(tensor.shape) == [batch, *dims], declared["name"]
        assert tensor.dtype == torch.float32 and bool(torch.isfinite(tensor).all())


@pytest.mark.parametrize("name", MODELS)
def test_no_model_pins_a_device(name: str) -> None:
    """Production runs these files on GPUs: no device may be a constant in their graphs."""
    assert device_constants(load(name)) == []
