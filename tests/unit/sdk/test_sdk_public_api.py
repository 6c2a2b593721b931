"""The package surface: what `import tritone` loads, exports and names."""

from __future__ import annotations

import inspect
import subprocess
import sys

import tritone

HEAVY = ("tritone_server", "aiohttp", "torch", "tritonclient", "soundfile", "soxr")


def test_import_is_light() -> None:
    code = (
        "import sys, tritone\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_public_objects_say_tritone() -> None:
    for name in tritone.__all__:
        obj = getattr(tritone, name)
        if inspect.isclass(obj):
            assert obj.__module__ == "tritone", name
    assert repr(tritone.ModelNotFoundError) == "<class 'tritone.ModelNotFoundError'>"


def test_no_proto_type_in_public_signatures() -> None:
    for cls in (tritone.AsyncClient, tritone.Client, tritone.AudioStream):
        for name, member in inspect.getmembers(cls, callable):
            if name.startswith("_") and name not in {"__init__"}:
                continue
            text = str(inspect.signature(member))
            assert "_pb2" not in text and "pb." not in text, (cls, name, text)


def test_result_types_are_frozen_slotted_dataclasses() -> None:
    for cls in (
        tritone.LabelScore,
        tritone.Segment,
        tritone.ClassifyResult,
        tritone.WindowResult,
        tritone.Detection,
        tritone.StreamSummary,
        tritone.ModelInfo,
        tritone.RawPcm,
        tritone.TlsConfig,
    ):
        params = cls.__dataclass_params__  # type: ignore[union-attr]
        assert params.frozen, cls
        assert hasattr(cls, "__slots__"), cls


def test_status_code_mirrors_grpc() -> None:
    import grpc

    for code in grpc.StatusCode:
        assert tritone.StatusCode[code.name].value == code.value[0]
