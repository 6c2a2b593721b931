"""Build the `voice-activity` model into model_repository/voice-activity/.

The source is Silero VAD, silero-vad==6.2.3 from PyPI (MIT): the 16 kHz core network
(`_model`) inside its `silero_vad/data/silero_vad.jit`. Its weights are copied into
`SileroVadCore`, a module written here with the Tritone model contract:

    forward(waveform FP32 [B, 64 + n*512], state_in FP32 [B, 2, 128])
        -> (logits FP32 [B, n, 1], state_out FP32 [B, 2, 128])

The waveform is a run of n consecutive windows (n >= 1): window k is
waveform[:, k*512 : k*512 + 576], 64 samples of context (the end of the previous hop; zeros
at the start of a stream) and 512 new samples at 16 kHz, exactly what silero-vad's own
wrapper feeds its core. The network's convolutions see all n windows as one batch; only the
LSTM cell loops over them inside the model, so a clip or a stream chunk of many hops costs
one Triton request, not one per window (config parameter `window_runs`: the most windows
the gateway puts in one request).
The state is the LSTM cell's (h, c), batch-first (silero keeps it as [2, B, 128]). `logits`
is the pre-sigmoid speech logit: silero's core ends in a sigmoid averaged over one frame,
so sigmoid(logits) is its speech probability and the config says activation "sigmoid".

The recipe then checks parity: it runs the written model.pt in runs of windows with the
state carried, as the gateway does (64 zeros before the stream), and compares sigmoid(logits)
with silero-vad's own `model(chunk, 16000)` probabilities on the real recordings of
Debian's pocketsphinx-testdata and on generated silence and noise. The largest differences
are printed and written into the model card; above 1e-4 the recipe fails.

Needs: `pip install silero-vad==6.2.3` and `apt-get install pocketsphinx-testdata`.
Usage: python recipes/build_voice_activity.py [--repository model_repository]
"""

import argparse
import hashlib
import importlib.metadata
import importlib.resources
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from tritone_server.triton.model_config import TensorConfig, render_config
from tritone_server.triton.torchscript import device_constants, quiet_torchscript

MODEL_NAME = "voice-activity"
SILERO_VERSION = "6.2.3"
SAMPLE_RATE = 16_000
HOP_SAMPLES = 512
CONTEXT_SAMPLES = 64
WINDOW_SAMPLES = CONTEXT_SAMPLES + HOP_SAMPLES
STATE_SHAPE = (2, 128)
MAX_BATCH_SIZE = 64
RUN_WINDOWS = 2048  # the most windows per request (about 4 MiB of waveform)
LABELS = ["speech"]
TOLERANCE = 1e-4
TESTDATA_DIR = Path("/usr/share/pocketsphinx/test/data")

# Silero's short-time Fourier transform: 256-sample frames every 128 samples, the window
# reflected by 64 samples at its end, a 258-row real/imaginary basis.
STFT_FILTER = 256
STFT_HOP = 128
STFT_PAD = 64
STFT_BINS = STFT_FILTER // 2 + 1

DESCRIPTION = (
    "Voice activity: the probability that a 32 ms hop of 16 kHz audio holds speech. "
    "Silero VAD (silero-vad==6.2.3, MIT), its 16 kHz core network with the LSTM state "
    "carried by the gateway between windows; 64 samples of context plus 512 new samples "
    "per window. Built by recipes/build_voice_activity.py."
)

FloatArray = npt.NDArray[np.float32]


class ConvBlock(nn.Module):
    """Conv1d (kernel 3, padding 1) and ReLU, as one of silero's encoder blocks."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_channels, in_channels, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(nn.functional.conv1d(x, self.weight, self.bias, self.stride, 1))


class SileroVadCore(nn.Module):
    """Silero VAD's 16 kHz network, stateless: the caller carries the LSTM state.

    STFT magnitude (a strided convolution with silero's fixed basis) -> four Conv1d+ReLU
    blocks -> LSTM cell -> ReLU -> 1x1 convolution giving one speech logit per window.
    Written with plain parameters and functional ops (no nn.Conv1d/nn.LSTMCell), so that
    the TorchScript file is byte-identical from run to run: those modules' constant sets
    are saved in hash order, which changes with each Python process.
    """

    stft_basis: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("stft_basis", torch.zeros(2 * STFT_BINS, 1, STFT_FILTER))
        self.encoder = nn.Sequential(
            ConvBlock(STFT_BINS, 128, stride=1),
            ConvBlock(128, 64, stride=2),
            ConvBlock(64, 64, stride=2),
            ConvBlock(64, 128, stride=1),
        )
        self.lstm_weight_ih = nn.Parameter(torch.zeros(4 * 128, 128))
        self.lstm_weight_hh = nn.Parameter(torch.zeros(4 * 128, 128))
        self.lstm_bias_ih = nn.Parameter(torch.zeros(4 * 128))
        self.lstm_bias_hh = nn.Parameter(torch.zeros(4 * 128))
        self.head_weight = nn.Parameter(torch.zeros(1, 128, 1))
        self.head_bias = nn.Parameter(torch.zeros(1))
        self.window_samples = WINDOW_SAMPLES
        self.hop_samples = HOP_SAMPLES
        self.stft_pad = STFT_PAD
        self.stft_hop = STFT_HOP
        self.stft_bins = STFT_BINS

    def forward(self, waveform: Tensor, state_in: Tensor) -> tuple[Tensor, Tensor]:
        context = self.window_samples - self.hop_samples
        if (
            waveform.dim() != 2
            or waveform.shape[1] < self.window_samples
            or (waveform.shape[1] - context) % self.hop_samples != 0
        ):
            raise ValueError(
                f"waveform must be [batch, {context} + n*{self.hop_samples}] (n >= 1 windows), "
                f"got {list(waveform.shape)}"
            )
        if state_in.dim() != 3 or state_in.shape[1] != 2 or state_in.shape[2] != 128:
            raise ValueError(f"state_in must be [batch, 2, 128], got {list(state_in.shape)}")
        batch = waveform.shape[0]
        windows = waveform.to(torch.float32).unfold(1, self.window_samples, self.hop_samples)
        n = windows.shape[1]
        x = windows.reshape(batch * n, 1, self.window_samples)
        x = nn.functional.pad(x, [0, self.stft_pad], mode="reflect")
        spectrum = nn.functional.conv1d(x, self.stft_basis, stride=self.stft_hop)
        real = spectrum[:, : self.stft_bins, :]
        imag = spectrum[:, self.stft_bins :, :]
        magnitude = torch.sqrt(real.pow(2) + imag.pow(2))
        # [B*n, 128] -> [B, n, 128]: one frame per window, every window at once
        features = self.encoder(magnitude).squeeze(-1).reshape(batch, n, 128)
        state = state_in.to(torch.float32)
        h = state[:, 0, :]
        c = state[:, 1, :]
        hidden: list[Tensor] = []
        for k in range(n):  # the recurrence is the only loop
            h, c = torch.lstm_cell(
                features[:, k, :],
                [h, c],
                self.lstm_weight_ih,
                self.lstm_weight_hh,
                self.lstm_bias_ih,
                self.lstm_bias_hh,
            )
            hidden.append(h)
        hs = torch.stack(hidden, dim=1).reshape(batch * n, 128, 1)
        logits = nn.functional.conv1d(torch.relu(hs), self.head_weight, self.head_bias)
        return logits.reshape(batch, n, 1), torch.stack([h, c], dim=1)  # [B, n, 1], [B, 2, 128]


# Where each tensor of SileroVadCore comes from in silero's `_model`.
_WEIGHT_SOURCES = {
    "stft_basis": "stft.forward_basis_buffer",
    "encoder.0.weight": "encoder.0.reparam_conv.weight",
    "encoder.0.bias": "encoder.0.reparam_conv.bias",
    "encoder.1.weight": "encoder.1.reparam_conv.weight",
    "encoder.1.bias": "encoder.1.reparam_conv.bias",
    "encoder.2.weight": "encoder.2.reparam_conv.weight",
    "encoder.2.bias": "encoder.2.reparam_conv.bias",
    "encoder.3.weight": "encoder.3.reparam_conv.weight",
    "encoder.3.bias": "encoder.3.reparam_conv.bias",
    "lstm_weight_ih": "decoder.rnn.weight_ih",
    "lstm_weight_hh": "decoder.rnn.weight_hh",
    "lstm_bias_ih": "decoder.rnn.bias_ih",
    "lstm_bias_hh": "decoder.rnn.bias_hh",
    "head_weight": "decoder.decoder.2.weight",
    "head_bias": "decoder.decoder.2.bias",
}


def silero_jit_path() -> Path:
    """silero_vad/data/silero_vad.jit of the installed silero-vad, which must be 6.2.3."""
    try:
        version = importlib.metadata.version("silero-vad")
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(
            f"the Python package silero-vad is missing: pip install silero-vad=={SILERO_VERSION}"
        ) from None
    if version != SILERO_VERSION:
        raise RuntimeError(f"silero-vad {version} is installed; the recipe needs {SILERO_VERSION}")
    return Path(str(importlib.resources.files("silero_vad.data").joinpath("silero_vad.jit")))


def load_silero() -> torch.jit.ScriptModule:
    """silero-vad's own stateful wrapper (what `silero_vad.load_silero_vad()` returns)."""
    with quiet_torchscript():
        module: torch.jit.ScriptModule = torch.jit.load(  # type: ignore[no-untyped-call]
            str(silero_jit_path()), map_location="cpu"
        )
    module.eval()
    return module


def core_from_silero(silero: torch.jit.ScriptModule) -> SileroVadCore:
    source = dict(silero._model.state_dict())
    core = SileroVadCore()
    ours = core.state_dict()
    if set(ours) != set(_WEIGHT_SOURCES):
        raise RuntimeError(f"weight map out of date: {sorted(set(ours) ^ set(_WEIGHT_SOURCES))}")
    unused = set(source) - set(_WEIGHT_SOURCES.values())
    if unused:
        raise RuntimeError(f"silero tensors not carried over: {sorted(unused)}")
    weights = {}
    for name, origin in _WEIGHT_SOURCES.items():
        tensor = source[origin]
        if tensor.shape != ours[name].shape:
            raise RuntimeError(
                f"{origin} is {list(tensor.shape)}, {name} is {list(ours[name].shape)}"
            )
        weights[name] = tensor.detach().clone().float()
    core.load_state_dict(weights)
    return core.eval()


# --- parity ----------------------------------------------------------------------------


def silero_probabilities(silero: torch.jit.ScriptModule, audio: FloatArray) -> FloatArray:
    """silero-vad's per-chunk probabilities, the way its get_speech_timestamps makes them."""
    silero.reset_states()
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    probs = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], HOP_SAMPLES):
            chunk = x[start : start + HOP_SAMPLES]
            if chunk.shape[0] < HOP_SAMPLES:
                chunk = nn.functional.pad(chunk, (0, HOP_SAMPLES - chunk.shape[0]))
            probs.append(float(silero(chunk, SAMPLE_RATE).item()))
    silero.reset_states()
    return np.asarray(probs, dtype=np.float32)


def gateway_windows(audio: FloatArray) -> FloatArray:
    """The windows the gateway sends for a stream: 64 zeros first, 576-sample windows every
    512 samples, the last one zero-padded; one window per 512-sample silero chunk."""
    n_windows = max(1, -(-audio.shape[0] // HOP_SAMPLES))
    padded = np.zeros(CONTEXT_SAMPLES + n_windows * HOP_SAMPLES, dtype=np.float32)
    padded[CONTEXT_SAMPLES : CONTEXT_SAMPLES + audio.shape[0]] = audio
    view = np.lib.stride_tricks.sliding_window_view(padded, WINDOW_SAMPLES)
    windows: FloatArray = np.ascontiguousarray(view[::HOP_SAMPLES][:n_windows])
    return windows


def model_probabilities(
    model: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
    streams: list[FloatArray],
    run_windows: int = RUN_WINDOWS,
) -> list[FloatArray]:
    """Run several streams side by side as one batch, as the gateway does: runs of up to
    `run_windows` consecutive windows per call, the state carried from zeros; return
    sigmoid(logits) of each stream's windows."""
    per_stream = [gateway_windows(a) for a in streams]
    longest = max(w.shape[0] for w in per_stream)
    padded = np.zeros((len(streams), CONTEXT_SAMPLES + longest * HOP_SAMPLES), dtype=np.float32)
    for i, audio in enumerate(streams):
        padded[i, CONTEXT_SAMPLES : CONTEXT_SAMPLES + audio.shape[0]] = audio
    state = torch.zeros(len(streams), *STATE_SHAPE)
    probs = np.zeros((len(streams), longest), dtype=np.float32)
    with torch.inference_mode():
        for k in range(0, longest, run_windows):
            n = min(run_windows, longest - k)
            run = padded[:, k * HOP_SAMPLES : k * HOP_SAMPLES + CONTEXT_SAMPLES + n * HOP_SAMPLES]
            logits, state = model(torch.from_numpy(np.ascontiguousarray(run)), state)
            probs[:, k : k + n] = torch.sigmoid(logits[:, :, 0]).numpy()
    return [probs[i, : w.shape[0]] for i, w in enumerate(per_stream)]


def read_wav(path: Path) -> FloatArray:
    """A 16 kHz mono 16-bit WAV as float32 in [-1, 1) (s16 / 32768, as the gateway reads it)."""
    with wave.open(str(path), "rb") as f:
        if (f.getframerate(), f.getnchannels(), f.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError(f"{path}: not 16 kHz mono 16-bit")
        data = f.readframes(f.getnframes())
    samples: FloatArray = (np.frombuffer(data, dtype="<i2") / np.float32(32768.0)).astype(
        np.float32
    )
    return samples


def testdata_recordings() -> list[Path]:
    paths = sorted(TESTDATA_DIR.glob("**/*.wav"))
    if not paths:
        raise RuntimeError(
            f"no recordings under {TESTDATA_DIR}: apt-get install pocketsphinx-testdata"
        )
    return paths


def generated_signals() -> dict[str, FloatArray]:
    rng = np.random.default_rng(20251125)
    n = 5 * SAMPLE_RATE
    white = rng.standard_normal(n).astype(np.float32)
    brown = np.cumsum(rng.standard_normal(n)).astype(np.float32)
    brown /= np.float32(np.abs(brown).max())
    return {
        "silence (5 s of zeros)": np.zeros(n, dtype=np.float32),
        "white noise, rms 0.01 (5 s)": 0.01 * white,
        "white noise, rms 0.3 (5 s)": np.clip(0.3 * white, -1, 1).astype(np.float32),
        "brown noise, peak 0.5 (5 s)": 0.5 * brown,
    }


@dataclass(frozen=True)
class ParityRow:
    name: str
    seconds: float
    windows: int
    max_abs_diff: float
    max_silero_prob: float


def parity(model_path: Path) -> list[ParityRow]:
    """Compare model.pt, run as the gateway runs it, with silero-vad's own probabilities."""
    silero = load_silero()
    with quiet_torchscript():
        exported = torch.jit.load(str(model_path), map_location="cpu")  # type: ignore[no-untyped-call]
    signals = {str(p.relative_to(TESTDATA_DIR)): read_wav(p) for p in testdata_recordings()}
    signals.update(generated_signals())
    names = list(signals)
    ours = model_probabilities(exported, [signals[n] for n in names])  # one batch for all
    rows = []
    for name, probs in zip(names, ours, strict=True):
        reference = silero_probabilities(silero, signals[name])
        if reference.shape != probs.shape:
            raise RuntimeError(f"{name}: {probs.shape} windows against silero's {reference.shape}")
        rows.append(
            ParityRow(
                name=name,
                seconds=signals[name].shape[0] / SAMPLE_RATE,
                windows=int(probs.shape[0]),
                max_abs_diff=float(np.abs(probs - reference).max()),
                max_silero_prob=float(reference.max()),
            )
        )
    return rows


# --- files ------------------------------------------------------------------------------


def config_pbtxt() -> str:
    return render_config(
        MODEL_NAME,
        inputs=[TensorConfig("waveform", (-1,)), TensorConfig("state_in", STATE_SHAPE)],
        outputs=[
            TensorConfig("logits", (-1, len(LABELS)), label_file=True),
            TensorConfig("state_out", STATE_SHAPE),
        ],
        parameters={
            "task": "voice-activity",
            "sample_rate": str(SAMPLE_RATE),
            "window_samples": str(WINDOW_SAMPLES),
            "hop_samples": str(HOP_SAMPLES),
            "context_samples": str(CONTEXT_SAMPLES),
            "window_runs": str(RUN_WINDOWS),
            "activation": "sigmoid",
            "aggregation": "max",
            "description": DESCRIPTION,
        },
        labels=LABELS,
        max_batch_size=MAX_BATCH_SIZE,
    )


def readme(rows: list[ParityRow], jit_sha256: str) -> str:
    table = "\n".join(
        f"| {r.name} | {r.seconds:.2f} | {r.windows} | {r.max_silero_prob:.3f} "
        f"| {r.max_abs_diff:.1e} |"
        for r in rows
    )
    worst = max(r.max_abs_diff for r in rows)
    windows = f"padded[k*{HOP_SAMPLES} : k*{HOP_SAMPLES}+{WINDOW_SAMPLES}]"
    return f"""# voice-activity

Voice activity detection: the probability that each 32 ms of 16 kHz audio holds speech.
The network is Silero VAD's, taken from silero-vad=={SILERO_VERSION}, with its recurrent
state carried by the gateway between a stream's windows.

- Task: voice-activity, one label `speech` (labels.txt), activation sigmoid, aggregation
  max (a clip's score is its most speech-like window).
- Input `waveform`: FP32 [batch, {CONTEXT_SAMPLES} + n*{HOP_SAMPLES}], mono, {SAMPLE_RATE} Hz: a
  run of n >= 1 consecutive windows of {WINDOW_SAMPLES} samples, window k being
  `waveform[:, k*{HOP_SAMPLES} : k*{HOP_SAMPLES}+{WINDOW_SAMPLES}]`: {CONTEXT_SAMPLES} samples of
  context (the end of the previous window; zeros at the start of a stream), then {HOP_SAMPLES}
  new samples. The config says `window_samples` {WINDOW_SAMPLES}, `hop_samples` {HOP_SAMPLES},
  `context_samples` {CONTEXT_SAMPLES} and `window_runs` {RUN_WINDOWS}, so the gateway puts
  {CONTEXT_SAMPLES} zeros before the audio, cuts windows `{windows}`, and sends up to
  {RUN_WINDOWS} consecutive ones in one request.
- Input `state_in`: FP32 [batch, 2, 128], the LSTM cell's (h, c) before the run; zeros for a
  new stream.
- Output `logits`: FP32 [batch, n, 1], the pre-sigmoid speech logit of each window;
  sigmoid(logits) is silero's speech probability.
- Output `state_out`: FP32 [batch, 2, 128], the state after the run's last window: `state_in`
  for the stream's next run.

Window k of a stream covers samples [k*{HOP_SAMPLES}, (k+1)*{HOP_SAMPLES}) of the audio and is
silero's chunk k. silero-vad's `get_speech_timestamps` and `VADIterator` read these same
probabilities, so their thresholds (0.5 to start speech, 0.35 to end it) carry over.

## How it works

This is Silero's 16 kHz network, unchanged. The window is reflected by {STFT_PAD} samples at
its end. A fixed STFT basis (a strided convolution: {STFT_FILTER}-sample frames every
{STFT_HOP} samples) gives {STFT_BINS} magnitude bins over 4 frames. Four Conv1d+ReLU blocks
(strides 1, 2, 2, 1) reduce them to one 128-d frame. These run on all the windows of a run
at once. An LSTM cell (hidden size 128) then updates the state window after window (the one
loop inside the model), and ReLU and a 1x1 convolution give the logits. Silero's own
wrapper averages the sigmoid over that single frame, so the logit is exact. The module is
`SileroVadCore` in the recipe, written for Tritone; only the weights come from silero. The
graph names no device, so Triton runs it on GPU or CPU.

## Parity with silero-vad

The check runs `model.pt` in runs of up to {RUN_WINDOWS} windows with the state carried,
as the gateway runs it, with all the signals side by side in one batch. It compares the result with
silero-vad's own `model(chunk, 16000)` calls over the same audio (the loop of its
`get_speech_timestamps`, with the last chunk zero-padded). The recordings are real human
speech from Debian's pocketsphinx-testdata (`{TESTDATA_DIR}`); the noise is seeded. The
largest absolute difference of the speech probabilities overall is {worst:.1e}; the recipe
fails above {TOLERANCE:.0e}.

| signal | seconds | windows | max silero probability | max abs difference |
| --- | ---: | ---: | ---: | ---: |
{table}

## How it is built

    pip install silero-vad=={SILERO_VERSION}
    apt-get install pocketsphinx-testdata   # for the parity check
    python recipes/build_voice_activity.py

The recipe reads `silero_vad/data/silero_vad.jit` from the installed package (sha256
`{jit_sha256}`) and copies the weights of its `_model` (the 16 kHz core) into
`SileroVadCore`. It writes `1/model.pt` (TorchScript, `torch.jit.script`), `config.pbtxt`
(the production configuration: `pytorch_libtorch`, GPU instance group, dynamic batching),
`labels.txt` and this README. It checks that model.pt loads and runs on CPU with batch sizes
1 and 4 and names no device, then runs the parity check above. Nothing is downloaded at run
time. Rebuilt from the same checkout, every file is byte-identical.

## Licence

The weights are Silero VAD's: MIT licence, Copyright (c) 2020-present Silero Team
(https://github.com/snakers4/silero-vad). The recipe and this model card are part of Tritone.
"""


def build(repository: Path) -> tuple[Path, str]:
    """Write the model directory except the README; return it and the source's sha256."""
    jit_path = silero_jit_path()
    jit_sha256 = hashlib.sha256(jit_path.read_bytes()).hexdigest()
    core = core_from_silero(load_silero())
    model_dir = repository / MODEL_NAME
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    with quiet_torchscript():
        scripted = torch.jit.script(core)
        torch.jit.save(scripted, str(model_dir / "1" / "model.pt"))
    (model_dir / "config.pbtxt").write_text(config_pbtxt(), encoding="utf-8")
    (model_dir / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    return model_dir, jit_sha256


def self_check(model_path: Path) -> None:
    """model.pt loads on CPU, runs batches of runs of windows, and its graph names no device."""
    with quiet_torchscript():
        module = torch.jit.load(str(model_path), map_location="cpu")  # type: ignore[no-untyped-call]
    for batch, windows in ((1, 1), (4, 1), (1, 7), (3, 5)):
        length = CONTEXT_SAMPLES + windows * HOP_SAMPLES
        with torch.inference_mode():
            logits, state = module(torch.zeros(batch, length), torch.zeros(batch, 2, 128))
        if tuple(logits.shape) != (batch, windows, 1) or tuple(state.shape) != (
            batch,
            *STATE_SHAPE,
        ):
            raise RuntimeError(f"batch {batch}: shapes {logits.shape}, {state.shape}")
    pinned = device_constants(module)
    if pinned:
        raise RuntimeError(f"model.pt's graph pins a device: {pinned}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--repository",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "model_repository",
        help="model repository to write into (default: the project's model_repository/)",
    )
    args = parser.parse_args()
    model_dir, jit_sha256 = build(args.repository)
    model_path = model_dir / "1" / "model.pt"
    self_check(model_path)
    rows = parity(model_path)
    for r in rows:
        print(f"parity {r.name}: {r.windows} windows, max |diff| {r.max_abs_diff:.2e}")
    worst = max(r.max_abs_diff for r in rows)
    print(f"parity overall: max |diff| {worst:.2e} (tolerance {TOLERANCE:.0e})")
    if worst > TOLERANCE:
        raise SystemExit(f"parity failed: {worst:.2e} > {TOLERANCE:.0e}")
    (model_dir / "README.md").write_text(readme(rows, jit_sha256), encoding="utf-8")
    print(f"wrote {model_dir}")


if __name__ == "__main__":
    main()
