"""The SDK's and the gateway's enums say what the proto says, value for value.

Each side defines PcmEncoding and Activation once (the SDK may not import the server); this
is the test that keeps the two definitions and the contract in step.
"""

from __future__ import annotations

from typing import get_args

import tritone
from tritone_protos import audio_classification_pb2 as pb
from tritone_server.audio.formats import PcmEncoding as ServerPcmEncoding
from tritone_server.core.models import ACTIVATIONS
from tritone_server.core.models import Activation as ServerActivation


def _proto_names(enum_name: str, prefix: str) -> set[str]:
    values = pb.DESCRIPTOR.enum_types_by_name[enum_name].values_by_name
    return {name.removeprefix(prefix).lower() for name in values if "UNSPECIFIED" not in name}


def test_pcm_encodings_agree_with_the_proto() -> None:
    proto = _proto_names("PcmEncoding", "PCM_")
    assert proto == {"s16le", "f32le"}
    assert {e.value for e in tritone.PcmEncoding} == proto
    assert {e.value for e in ServerPcmEncoding} == proto


def test_activations_agree_with_the_proto() -> None:
    proto = _proto_names("Activation", "ACTIVATION_")
    assert proto == {"softmax", "sigmoid", "none"}
    assert set(get_args(tritone.Activation)) == proto
    assert set(get_args(ServerActivation)) == proto
    assert set(ACTIVATIONS) == proto
