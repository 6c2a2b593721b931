from __future__ import annotations

import json

import pytest
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from tritone_server.core.models import spec_from_config
from tritone_server.triton.model_config import TensorConfig, pbtxt_string, render_config


def test_rendered_config_parses_as_triton_config_and_fits_the_gateway() -> None:
    text = render_config(
        "demo",
        inputs=[TensorConfig("waveform", (-1,)), TensorConfig("state_in", (2, 3))],
        outputs=[TensorConfig("logits", (2,), label_file=True), TensorConfig("state_out", (2, 3))],
        parameters={
            "task": "audio-classification",
            "sample_rate": "16000",
            "window_samples": "400",
            "hop_samples": "200",
            "activation": "softmax",
            "description": 'says "hi"\nand \\ more',
        },
        labels=["a", 'b "quoted"'],
        max_batch_size=8,
    )
    message = model_config_pb2.ModelConfig()
    text_format.Parse(text, message)
    config = json_format.MessageToDict(message, preserving_proto_field_name=True)
    assert config["output"][0]["label_filename"] == "labels.txt"
    assert config["parameters"]["description"]["string_value"] == 'says "hi"\nand \\ more'
    assert json.loads(config["parameters"]["labels"]["string_value"]) == ["a", 'b "quoted"']
    spec = spec_from_config(config, "1")
    assert spec.labels == ("a", 'b "quoted"') and spec.stateful and spec.max_batch_size == 8


def test_non_ascii_strings_are_refused() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        pbtxt_string("café")
