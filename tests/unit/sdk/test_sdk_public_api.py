"""The package surface: what `import tritone` loads, exports and names."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import tritone

# Never loaded by these modules, whatever is installed: the gateway, the offline tools, their
# dependencies, and the [eval] extra.
HEAVY = (
    "tritone_server",
    "tritone_tools",
    "aiohttp",
    "torch",
    "tritonclient",
    "soundfile",
    "soxr",
    "matplotlib",
    "tqdm",
)
LIGHT = frozenset({"tritone", "tritone_protos", "grpc", "google", "numpy"})
LIGHT_MODULES = ("tritone", "tritone.cli_args", "tritone.cli")


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_import_is_light(module: str) -> None:
    # The SDK's three dependencies are imported first, with whatever they load themselves
    # (grpc probes for grpc_tools and friends, grpc.aio loads typing_extensions); then the
    # module may add only the standard library, its own package and more of those three.
    code = (
        "import sys\n"
        "import grpc, grpc.aio, google.protobuf, numpy\n"
        "before = set(sys.modules)\n"
        f"import {module}\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(' '.join(sorted(new - set(sys.stdlib_module_names))))\n"
        f"heavy = {HEAVY!r}\n"
        "print(' '.join(sorted({m for m in sys.modules if m.split('.')[0] in heavy})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    new_line, heavy_line = out.split("\n")[:2]
    loaded = set(new_line.split())
    assert "tritone" in loaded, "the check must see what the import adds"
    assert loaded <= LIGHT, f"import {module} loads {sorted(loaded - LIGHT)}"
    assert heavy_line == "", f"import {module} loads {heavy_line}"


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
