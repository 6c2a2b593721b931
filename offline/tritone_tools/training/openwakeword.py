"""openwakeword==0.4.0's speech-embedding backbone as torch modules, built from its wheel.

openwakeword ships two Apache-2.0 ONNX networks in its wheel, under
``openwakeword/resources/models/``:

- ``melspectrogram.onnx``: waveform (int16 scale, float) -> 32-band log-mel frames. An STFT
  written as two strided 1-D convolutions (512-sample kernels, hop 160), power, a mel matrix,
  10*log10 with a floor of 1e-10, then everything below (max - 80 dB) is clipped.
- ``embedding_model.onnx``: a Keras conv net (Google's speech_embedding) that turns a window
  of 76 mel frames (after openwakeword's ``x / 10 + 2``) into one 96-d embedding.

`load_backbone` reads the weights with the ``onnx`` package (imported when called) and
rebuilds both networks from plain torch ops; nothing here runs onnxruntime. The wake-word
heads in the same folder are non-commercial and are never read.

This is the installed package's copy because code that runs uses it: ``tritone train``
rebuilds the speech-commands backbone from it when the served model.pt does not expose
one (training/backbones.py), and the speech-commands recipe builds its model from it.
The comparison with openwakeword's own pipeline in onnxruntime is build-time work and stays
in recipes/speech_commands/port_openwakeword.py.

One deliberate difference: the ONNX mel model takes its 80 dB floor from the maximum over the
*whole batch* (ReduceMax without axes). Here the maximum is taken per clip, so one clip's
result never depends on the others in a dynamic batch. For a batch of one they are the same.
"""

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

SAMPLE_RATE = 16_000
N_MELS = 32
WINDOW_FRAMES = 76
WINDOW_STRIDE = 8
EMBEDDING_DIM = 96
INT16_SCALE = 32768.0
MEL_FILE = "melspectrogram.onnx"
EMBEDDING_FILE = "embedding_model.onnx"


def openwakeword_models_dir() -> Path:
    """The installed openwakeword package's resources/models folder (no download)."""
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "openwakeword is not installed: pip install openwakeword==0.4.0 --no-deps"
        )
    folder = Path(spec.origin).parent / "resources" / "models"
    for name in (MEL_FILE, EMBEDDING_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing from the openwakeword wheel")
    return folder


def _load_onnx(path: Path) -> tuple[Any, dict[str, npt.NDArray[Any]]]:
    try:
        import onnx
        from onnx import numpy_helper
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"reading {path.name} needs the onnx package: pip install onnx==1.17.0 "
            "(in the [recipes] extra)",
            name="onnx",
        ) from exc

    model = onnx.load(str(path))
    weights: dict[str, npt.NDArray[Any]] = {
        t.name: numpy_helper.to_array(t) for t in model.graph.initializer
    }
    for node in model.graph.node:
        if node.op_type == "Constant":
            weights[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return model.graph, weights


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _tensor(array: npt.NDArray[Any]) -> Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32, copy=True))


class MelSpectrogram(nn.Module):
    """waveform [B, N] (int16 scale) -> log-mel [B, T, 32], T = (N - 512) // 160 + 1."""

    stft_weight: Tensor
    mel_matrix: Tensor

    def __init__(self, real: Tensor, imag: Tensor, mel: Tensor, floor: float, top_db: float):
        super().__init__()
        self.n_bins = int(real.shape[0])
        self.n_fft = int(real.shape[-1])
        self.hop = 160
        # One convolution gives the real and the imaginary parts together.
        self.register_buffer("stft_weight", torch.cat([real, imag], dim=0))
        self.register_buffer("mel_matrix", mel)
        self.floor = floor
        self.top_db = top_db
        self.db_per_ln = 10.0 / math.log(10.0)

    def forward(self, waveform: Tensor) -> Tensor:
        x = waveform.unsqueeze(1)
        spec = torch.nn.functional.conv1d(x, self.stft_weight, stride=self.hop)
        real = spec[:, : self.n_bins]
        imag = spec[:, self.n_bins :]
        power = (real * real + imag * imag).transpose(1, 2)  # [B, T, bins]
        mel = torch.matmul(power, self.mel_matrix)
        db = torch.log(torch.clamp(mel, min=self.floor)) * self.db_per_ln
        peak = db.amax(dim=(1, 2), keepdim=True)
        return torch.maximum(db, peak - self.top_db)


def build_melspectrogram(path: Path) -> MelSpectrogram:
    graph, w = _load_onnx(path)
    ops = [n.op_type for n in graph.node if n.op_type != "Constant"]
    expected = ["Unsqueeze", "Conv", "Conv", "Unsqueeze", "Transpose", "Unsqueeze"]
    if ops[:6] != expected or "MatMul" not in ops or "ReduceMax" not in ops:
        raise ValueError(f"unexpected melspectrogram graph: {ops}")
    convs = [n for n in graph.node if n.op_type == "Conv"]
    for conv in convs:
        a = _attrs(conv)
        if list(a["strides"]) != [160] or list(a.get("pads", [0, 0])) != [0, 0]:
            raise ValueError(f"unexpected STFT convolution attributes {a}")
    real = _tensor(w[convs[0].input[1]])
    imag = _tensor(w[convs[1].input[1]])
    matmul = next(n for n in graph.node if n.op_type == "MatMul")
    mel = _tensor(w[matmul.input[1]])
    clip = next(n for n in graph.node if n.op_type == "Clip")
    floor = float(w[clip.input[1]])
    mul = next(n for n in graph.node if n.op_type == "Mul")
    div = next(n for n in graph.node if n.op_type == "Div")
    if not math.isclose(
        float(w[mul.input[1]]) / float(w[div.input[1]]), 10 / math.log(10), rel_tol=1e-6
    ):
        raise ValueError("the mel model is not 10*log10")
    subs = [n for n in graph.node if n.op_type == "Sub"]
    if float(w[subs[0].input[1]]) != 0.0:
        raise ValueError("unexpected reference level")
    top_db = float(w[subs[1].input[1]])
    return MelSpectrogram(real, imag, mel, floor, top_db)


class ClampMin(nn.Module):
    """ONNX Max(x, constant) with a scalar constant."""

    def __init__(self, minimum: float) -> None:
        super().__init__()
        self.minimum = minimum

    def forward(self, x: Tensor) -> Tensor:
        return torch.clamp(x, min=self.minimum)


class SpeechEmbedding(nn.Module):
    """mel windows [N, 76, 32] (after x/10 + 2) -> embeddings [N, 96]."""

    def __init__(self, layers: nn.Sequential, pad_low: int, pad_high: int) -> None:
        super().__init__()
        self.layers = layers
        self.pad_low = pad_low
        self.pad_high = pad_high

    def forward(self, windows: Tensor) -> Tensor:
        x = torch.nn.functional.pad(windows, (self.pad_low, self.pad_high)).unsqueeze(1)
        out: Tensor = self.layers(x).flatten(1)
        return out


def _conv(node: Any, w: dict[str, npt.NDArray[Any]]) -> nn.Conv2d:
    a = _attrs(node)
    weight = _tensor(w[node.input[1]])
    pads = list(a.get("pads", [0, 0, 0, 0]))
    strides = list(a.get("strides", [1, 1]))
    if pads[:2] != pads[2:] or list(a.get("dilations", [1, 1])) != [1, 1] or a.get("group", 1) != 1:
        raise ValueError(f"unsupported convolution {node.name}: {a}")
    conv = nn.Conv2d(
        int(weight.shape[1]),
        int(weight.shape[0]),
        kernel_size=(int(weight.shape[2]), int(weight.shape[3])),
        stride=(int(strides[0]), int(strides[1])),
        padding=(int(pads[0]), int(pads[1])),
        bias=len(node.input) > 2,
    )
    with torch.no_grad():
        conv.weight.copy_(weight)
        if conv.bias is not None:
            conv.bias.copy_(_tensor(w[node.input[2]]))
    return conv


def _batch_norm(node: Any, w: dict[str, npt.NDArray[Any]]) -> nn.BatchNorm2d:
    scale, bias, mean, var = (_tensor(w[name]) for name in node.input[1:5])
    bn = nn.BatchNorm2d(int(scale.shape[0]), eps=float(_attrs(node)["epsilon"]))
    with torch.no_grad():
        bn.weight.copy_(scale)
        bn.bias.copy_(bias)
        if bn.running_mean is None or bn.running_var is None:
            raise RuntimeError("BatchNorm2d without running statistics")
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
    bn.eval()
    return bn


def build_embedding(path: Path) -> SpeechEmbedding:
    graph, w = _load_onnx(path)
    nodes = list(graph.node)
    if [n.op_type for n in nodes[:2]] != ["Pad", "Reshape"] or nodes[-1].op_type != "Reshape":
        raise ValueError("unexpected embedding graph")
    pads = [int(p) for p in w[nodes[0].input[1]]]
    # NHWC [N, 76, 32, 1]: only the mel axis (2) is padded.
    if pads[0:2] + pads[3:6] + pads[7:] != [0] * 6:
        raise ValueError(f"unexpected padding {pads}")
    if [int(s) for s in w[nodes[1].input[1]]] != [-1, 1, WINDOW_FRAMES, N_MELS + pads[2] + pads[6]]:
        raise ValueError("unexpected reshape to NCHW")
    layers: list[nn.Module] = []
    previous = nodes[1].output[0]
    for node in nodes[2:-1]:
        if node.input[0] != previous:
            raise ValueError(f"graph is not a chain at {node.name}")
        previous = node.output[0]
        a = _attrs(node)
        if node.op_type == "Conv":
            layers.append(_conv(node, w))
        elif node.op_type == "Relu":
            layers.append(nn.ReLU())
        elif node.op_type == "BatchNormalization":
            layers.append(_batch_norm(node, w))
        elif node.op_type == "LeakyRelu":
            layers.append(nn.LeakyReLU(float(a["alpha"])))
        elif node.op_type == "Max":
            constant = w[node.input[1]]
            if constant.size != 1:
                raise ValueError("Max with a non-scalar constant")
            layers.append(ClampMin(float(constant.reshape(()))))
        elif node.op_type == "MaxPool":
            if any(int(p) for p in a.get("pads", [0, 0, 0, 0])) or a.get("ceil_mode", 0):
                raise ValueError(f"unsupported pooling {a}")
            kernel = tuple(int(k) for k in a["kernel_shape"])
            stride = tuple(int(s) for s in a["strides"])
            layers.append(nn.MaxPool2d(kernel_size=kernel, stride=stride))
        else:
            raise ValueError(f"unsupported ONNX op {node.op_type}")
    if nodes[-1].input[0] != previous:
        raise ValueError("graph is not a chain at the output")
    module = SpeechEmbedding(nn.Sequential(*layers), pads[2], pads[6])
    module.eval()
    return module


class Backbone(nn.Module):
    """waveform [B, N] in [-1, 1] at 16 kHz -> embeddings [B, W, 96], openwakeword's pipeline.

    W = number of whole 76-frame windows at ``window_stride`` frames (openwakeword's 8: 3 for
    one second; 4: 6 for one second). The stride changes only which windows are embedded.
    """

    def __init__(
        self, mel: MelSpectrogram, embedding: SpeechEmbedding, window_stride: int = WINDOW_STRIDE
    ) -> None:
        super().__init__()
        self.mel = mel
        self.embedding = embedding
        self.int16_scale = INT16_SCALE
        self.window_frames = WINDOW_FRAMES
        self.window_stride = window_stride

    def features(self, waveform: Tensor) -> Tensor:
        """openwakeword's transformed mel frames [B, T, 32]."""
        mel: Tensor = self.mel(waveform * self.int16_scale)
        return mel / 10.0 + 2.0

    def forward(self, waveform: Tensor) -> Tensor:
        spec = self.features(waveform)
        batch = spec.shape[0]
        windows = spec.unfold(1, self.window_frames, self.window_stride)  # [B, W, 32, 76]
        n_windows = windows.shape[1]
        flat = windows.transpose(2, 3).reshape(batch * n_windows, self.window_frames, -1)
        out: Tensor = self.embedding(flat)
        return out.reshape(batch, n_windows, -1)


def load_backbone(models_dir: Path | None = None, window_stride: int = WINDOW_STRIDE) -> Backbone:
    """The port with the weights of `models_dir` (default: the installed openwakeword wheel's)."""
    folder = models_dir or openwakeword_models_dir()
    backbone = Backbone(
        build_melspectrogram(folder / MEL_FILE),
        build_embedding(folder / EMBEDDING_FILE),
        window_stride,
    )
    backbone.eval()
    return backbone


def windows_for(samples: int, window_stride: int = WINDOW_STRIDE) -> int:
    """How many embedding windows `Backbone` gives for a clip of `samples` samples."""
    frames = (samples - 512) // 160 + 1
    return (frames - WINDOW_FRAMES) // window_stride + 1
