"""The one model description both wires render: what it says, and that it says all of it."""

from __future__ import annotations

import json

from support.fake_backend import config
from tritone_protos import audio_classification_pb2 as pb
from tritone_server.core.description import describe_model
from tritone_server.core.models import spec_from_config
from tritone_server.frontends.service import model_info


def test_a_model_without_thresholds_says_min_windows_zero() -> None:
    facts = describe_model(spec_from_config(config(), "7"))
    assert facts["detection_thresholds"] == {} and facts["detection_min_windows"] == 0
    assert (facts["name"], facts["version"], facts["labels"]) == (
        "levels",
        "7",
        ("zero", "one", "two", "three"),
    )


def test_a_calibrated_model_says_its_operating_point() -> None:
    c = config(activation="softmax")
    c["parameters"]["detection_thresholds"] = {"string_value": json.dumps({"two": 0.9})}
    c["parameters"]["detection_min_windows"] = {"string_value": "3"}
    facts = describe_model(spec_from_config(c, "1"))
    assert facts["detection_thresholds"] == {"two": 0.9} and facts["detection_min_windows"] == 3


def test_the_grpc_model_info_is_the_description_field_for_field() -> None:
    """Every ModelInfo field comes from the description (``state`` from ``ready``): a field
    added to the proto and not described would be left at its default on one wire only."""
    spec = spec_from_config(config(activation="sigmoid"), "1")
    facts = describe_model(spec)
    info = model_info(spec)
    wire = {f.name for f in pb.ModelInfo.DESCRIPTOR.fields}
    assert wire == (set(facts) - {"ready"}) | {"state"}
    assert info.state == pb.MODEL_STATE_READY and info.activation == pb.ACTIVATION_SIGMOID
    assert tuple(info.labels) == facts["labels"] and info.window_samples == 100
