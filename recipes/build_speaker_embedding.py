"""Build the `speaker-embedding` backbone into model_repository/speaker-embedding/.

The weights are Resemblyzer 0.1.4's `pretrained.pt` (Apache-2.0), which ships inside the
`Resemblyzer` wheel: nothing is downloaded. The TorchScript module does, in torch, what
`VoiceEncoder.embed_utterance(normalize_volume(wav, -30, increase_only=True))` does:

1. volume normalisation: a clip quieter than -30 dBFS RMS is scaled up to it (never down);
2. Resemblyzer's mel front end (`wav_to_mel_spectrogram`): 25 ms periodic Hann window
   (400 samples), 10 ms hop (160), centred frames with zero padding, power spectrum, 40
   Slaney mel filters from librosa (computed here, stored in the model as a buffer);
   linear mel power, not log;
3. partial utterances of 160 frames (1.6 s), one every 77 frames (rate 1.3 per second),
   the last one kept only if the audio covers at least 75 % of it (the clip is padded with
   zeros up to the end of the last kept partial);
4. the 3-layer LSTM (256 units) on every partial, its last hidden state through a linear
   layer and ReLU, L2-normalised; the partial embeddings averaged and L2-normalised again.

Resemblyzer's `preprocess_wav` also shortens long silences with webrtcvad; that step is not
in the model (it changes the clip's length and runs on a CPU VAD). A caller who wants it
runs `resemblyzer.trim_long_silences` (or any VAD) before sending the audio.

The recipe then measures, on real recordings from Debian's pocketsphinx-testdata and on
espeak-ng voices, the cosine between this model's embedding and Resemblyzer's own, and how
well same-speaker pairs separate from different-speaker pairs, prints the figures and writes
them into the model card.

Needs: Resemblyzer==0.1.4 (pip install --no-deps) with librosa, scipy and webrtcvad-wheels;
soundfile and soxr; apt packages pocketsphinx-testdata and espeak-ng.

Usage: python recipes/build_speaker_embedding.py [--repository model_repository]
"""

import argparse
import importlib.util
import itertools
import math
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tritone_server.triton.model_config import TensorConfig, render_config
from tritone_server.triton.torchscript import quiet_torchscript

MODEL_NAME = "speaker-embedding"
SAMPLE_RATE = 16_000
MAX_BATCH_SIZE = 16
EMBEDDING_DIM = 256
RESEMBLYZER_VERSION = "0.1.4"

# Resemblyzer 0.1.4 hparams.py and voice_encoder.py.
N_FFT = SAMPLE_RATE * 25 // 1000  # mel_window_length 25 ms -> 400 samples
HOP = SAMPLE_RATE * 10 // 1000  # mel_window_step 10 ms -> 160 samples
N_MELS = 40
PARTIAL_FRAMES = 160  # partials_n_frames
PARTIAL_RATE = 1.3  # embed_utterance(rate=1.3)
PARTIAL_STEP = round((SAMPLE_RATE / PARTIAL_RATE) / HOP)  # 77 frames
MIN_COVERAGE = 0.75  # embed_utterance(min_coverage=0.75)
HIDDEN = 256
LAYERS = 3
TARGET_DBFS = -30.0  # audio_norm_target_dBFS
INT16_MAX = 2**15 - 1

DESCRIPTION = (
    "Speaker embedding backbone: 256-d L2-normalised d-vector of a whole 16 kHz mono clip "
    "(Resemblyzer 0.1.4 pretrained GE2E LSTM encoder, Apache-2.0), with Resemblyzer's "
    "volume normalisation and 40-band mel front end in torch. Cosine similarity compares "
    "speakers. Batch only clips of equal length. Built by recipes/build_speaker_embedding.py."
)

DATA_DIR = Path("/usr/share/pocketsphinx/test/data")
# Speakers by the package's layout: the five librivox clips are consecutive sentences of one
# LibriVox reading (Sense and Sensibility, chapter 1, one reader; see librivox/transcription),
# and the five cards clips are one recorded test set of one speaker (cards.fileids).
POCKETSPHINX_SPEAKERS = {
    "librivox-reader": [
        f"librivox/sense_and_sensibility_01_austen_64kb-{n}.wav"
        for n in ("0870", "0880", "0890", "0920", "0930")
    ],
    "cards-speaker": [f"cards/00{n}.wav" for n in range(1, 6)],
}
# Raw 16 kHz s16le recordings whose speakers the package does not document: used for the
# agreement with Resemblyzer only.
POCKETSPHINX_RAW = ["goforward.raw", "numbers.raw", "something.raw", "tidigits/dhd.2934z.raw"]

ESPEAK_VOICES = ["en+m3", "en+f2", "en-us+m1", "en-us+f4", "en-gb-scotland+m7", "en+klatt"]
ESPEAK_TEXTS = [
    "The quick brown fox jumps over the lazy dog while the farmer watches from the gate.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "A rainbow is a division of white light into many beautiful colours after the rain.",
    "Seven slender sailors sang softly as the evening tide carried them home.",
]

Audio = npt.NDArray[np.float32]


# ---------------------------------------------------------------------------- the model


class SpeakerEmbedding(nn.Module):
    """waveform FP32 [batch, samples] at 16 kHz -> embedding FP32 [batch, 256], unit norm.

    All clips of a batch have the same length (the partial utterances depend on it).
    """

    window: Tensor
    mel_basis: Tensor

    def __init__(self, mel_basis: Tensor) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, EMBEDDING_DIM)
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True))
        self.register_buffer("mel_basis", mel_basis.to(torch.float32).clone())
        self.n_fft = N_FFT
        self.hop = HOP
        self.partial_frames = PARTIAL_FRAMES
        self.partial_step = PARTIAL_STEP
        # Coverage is compared in integers: covered * den < partial_samples * num.
        self.coverage_num = 3
        self.coverage_den = 4
        self.target_rms = 10.0 ** (TARGET_DBFS / 20.0)

    def normalise_volume(self, x: Tensor) -> Tensor:
        """Scale each clip up to -30 dBFS RMS if it is quieter; silence stays silence."""
        n = max(x.shape[1], 1)
        rms = torch.sqrt(x.to(torch.float64).square().sum(dim=1, keepdim=True) / float(n))
        gain = torch.where(
            (rms > 0.0) & (rms < self.target_rms),
            self.target_rms / rms.clamp_min(1e-30),
            torch.ones_like(rms),
        )
        return (x.to(torch.float64) * gain).to(torch.float32)

    def partial_count(self, n_samples: int) -> int:
        """How many partial utterances VoiceEncoder.compute_partial_slices makes."""
        n_frames = (n_samples + 1 + self.hop - 1) // self.hop  # ceil((n + 1) / hop)
        steps = max(1, n_frames - self.partial_frames + self.partial_step + 1)
        count = (steps + self.partial_step - 1) // self.partial_step
        last_start = (count - 1) * self.partial_step * self.hop
        partial_samples = self.partial_frames * self.hop
        covered = n_samples - last_start
        if count > 1 and covered * self.coverage_den < partial_samples * self.coverage_num:
            count -= 1
        return count

    def mel_frames(self, x: Tensor) -> Tensor:
        """[batch, samples] -> linear mel power [batch, frames, 40], librosa's framing."""
        spec = torch.stft(
            x,
            n_fft=self.n_fft,
            hop_length=self.hop,
            win_length=self.n_fft,
            window=self.window,
            center=True,
            pad_mode="constant",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()  # [batch, bins, frames]
        return torch.matmul(self.mel_basis, power).transpose(1, 2)

    def forward(self, waveform: Tensor) -> Tensor:
        x = self.normalise_volume(waveform.to(torch.float32))
        batch, n_samples = x.shape[0], x.shape[1]
        count = self.partial_count(n_samples)
        padded = max(n_samples, ((count - 1) * self.partial_step + self.partial_frames) * self.hop)
        x = F.pad(x, [0, padded - n_samples])
        mel = self.mel_frames(x)
        starts = torch.arange(count, device=x.device) * self.partial_step
        index = starts.unsqueeze(1) + torch.arange(self.partial_frames, device=x.device)
        partials = mel[:, index].reshape(batch * count, self.partial_frames, mel.shape[2])
        _, (hidden, _) = self.lstm(partials)
        raw: Tensor = torch.relu(self.linear(hidden[-1]))
        partial_embeds = raw / self.l2_norm(raw)
        mean = partial_embeds.reshape(batch, count, raw.shape[1]).mean(dim=1)
        return mean / self.l2_norm(mean)

    def l2_norm(self, x: Tensor) -> Tensor:
        """Row norms, kept away from zero (an all-zero ReLU output would give NaN)."""
        norm: Tensor = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        return norm.clamp_min(1e-12)


# ---------------------------------------------------------------------------- sources


def resemblyzer_weights() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or spec.origin is None:
        raise SystemExit(
            "Resemblyzer is not installed: "
            f"pip install --no-deps Resemblyzer=={RESEMBLYZER_VERSION}"
        )
    path = Path(spec.origin).parent / "pretrained.pt"
    if not path.exists():
        raise SystemExit(f"Resemblyzer's pretrained.pt is missing at {path}")
    return path


def mel_filterbank() -> Tensor:
    """librosa's Slaney mel filters as Resemblyzer's melspectrogram call builds them."""
    import librosa

    basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
    return torch.from_numpy(np.ascontiguousarray(basis, dtype=np.float32))


def build_module() -> SpeakerEmbedding:
    checkpoint = torch.load(resemblyzer_weights(), map_location="cpu", weights_only=True)
    state = {
        k: v for k, v in checkpoint["model_state"].items() if k.startswith(("lstm.", "linear."))
    }
    module = SpeakerEmbedding(mel_filterbank())
    missing, unexpected = module.load_state_dict(state, strict=False)
    if unexpected or set(missing) != {"window", "mel_basis"}:
        raise RuntimeError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    return module.eval()


def load_model(path: Path) -> Any:
    with quiet_torchscript():
        return torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]


# ---------------------------------------------------------------------------- config and card


def config_pbtxt() -> str:
    return render_config(
        MODEL_NAME,
        inputs=[TensorConfig("waveform", (-1,))],
        outputs=[TensorConfig("embedding", (EMBEDDING_DIM,))],
        parameters={
            "task": "embedding",
            "sample_rate": str(SAMPLE_RATE),
            "window_samples": "0",
            "hop_samples": "0",
            "activation": "none",
            "description": DESCRIPTION,
        },
        max_batch_size=MAX_BATCH_SIZE,
    )


@dataclass(frozen=True)
class PairStats:
    speakers: int
    same_pairs: int
    different_pairs: int
    same_mean: float
    same_min: float
    different_mean: float
    different_max: float
    ordered: float
    """Fraction of (same pair, different pair) couples where the same pair scores higher."""


@dataclass(frozen=True)
class Figures:
    clips: int
    min_cosine_normalised: float
    min_cosine_preprocessed: float
    pocketsphinx: PairStats
    espeak: PairStats | None
    espeak_voices: tuple[str, ...]


TABLE_COLUMNS = (
    "set",
    "speakers",
    "same pairs",
    "same mean",
    "same min",
    "different pairs",
    "different mean",
    "different max",
    "P(same > different)",
)
TABLE_HEADER = "| " + " | ".join(TABLE_COLUMNS) + " |\n|" + " --- |" * len(TABLE_COLUMNS)


def _stats_lines(title: str, s: PairStats) -> str:
    return (
        f"| {title} | {s.speakers} | {s.same_pairs} | {s.same_mean:.3f} | {s.same_min:.3f} "
        f"| {s.different_pairs} | {s.different_mean:.3f} | {s.different_max:.3f} "
        f"| {s.ordered:.3f} |"
    )


def readme(fig: Figures) -> str:
    rows = [_stats_lines("pocketsphinx-testdata (human)", fig.pocketsphinx)]
    if fig.espeak is not None:
        rows.append(_stats_lines("espeak-ng voices (synthetic)", fig.espeak))
    table = "\n".join(rows)
    voices = "\n".join(f"  - `{v}`" for v in fig.espeak_voices) or "  - none (espeak-ng missing)"
    return f"""# speaker-embedding

A speaker-embedding backbone: a 256-dimensional d-vector for a whole clip of speech. Two
clips of the same speaker have a higher cosine similarity than clips of different
speakers. It is Resemblyzer's pretrained voice encoder (GE2E-trained LSTM), with its front
end ported to torch so that the whole model runs inside Triton, on GPU or CPU.

- Task: `embedding`, activation `none`, no labels.
- Input `waveform`: FP32 [batch, samples], mono, {SAMPLE_RATE} Hz, any length (the whole
  clip is one window: `window_samples` 0, `hop_samples` 0). Speech of at least about a
  second gives useful embeddings; Resemblyzer's partials are 1.6 s.
- Output `embedding`: FP32 [batch, {EMBEDDING_DIM}], L2 norm 1, every value >= 0 (so the
  cosine of two embeddings, their dot product, lies in [0, 1]).
- Batching: **only clips of equal length may share a batch.** The number of partial
  utterances depends on the length, so every row of a batch is cut the same way; zero
  padding a clip to match another changes its embedding. Rows of a batch of equal-length
  clips are independent: a batch gives the same embeddings as one clip at a time. Triton's
  dynamic batcher only merges requests of the same shape, so it keeps to this by itself;
  a caller that builds its own batches must too.

## How it works

In the TorchScript graph, per clip (nothing is fixed to a device: the filter bank and the
window are buffers that follow the model to its device):

1. Volume normalisation as Resemblyzer's `normalize_volume(wav, -30, increase_only=True)`:
   a clip whose RMS is below {TARGET_DBFS:.0f} dBFS is scaled up to it; louder clips are
   left alone. An all-zero clip is left as it is and still gets a finite embedding
   (Resemblyzer's `normalize_volume` would turn it into NaN).
2. Mel front end as Resemblyzer's `wav_to_mel_spectrogram` (librosa 0.11
   `melspectrogram` defaults): periodic Hann window of {N_FFT} samples (25 ms), hop {HOP}
   (10 ms), centred frames with zero padding, power spectrum, {N_MELS} Slaney-normalised
   mel filters (0 to 8 kHz, computed by the recipe with `librosa.filters.mel` and stored
   as a buffer). Linear power, no log.
3. Partial utterances as `VoiceEncoder.embed_utterance(rate={PARTIAL_RATE},
   min_coverage={MIN_COVERAGE})`: {PARTIAL_FRAMES} frames (1.6 s) each, one every
   {PARTIAL_STEP} frames; the last is kept only if the clip covers at least
   {MIN_COVERAGE:.0%} of it, and the clip is zero-padded to its end. A short clip gives one
   zero-padded partial.
4. The encoder: a {LAYERS}-layer LSTM ({HIDDEN} units) on each partial, the last layer's
   final hidden state through a linear layer and ReLU, L2-normalised; the partial
   embeddings are averaged and L2-normalised.

Not in the model: Resemblyzer's `preprocess_wav` also shortens silences longer than about
0.2 s with webrtcvad (`trim_long_silences`). That changes the clip's length, so it is the
caller's step: run `resemblyzer.trim_long_silences` (or another VAD) on 16 kHz audio
before sending it for embeddings that match Resemblyzer's recommended pipeline exactly.
Without it, long pauses in a clip dilute the embedding somewhat.

## Measured

Figures written by the recipe on this build (CPU).

Agreement with Resemblyzer {RESEMBLYZER_VERSION} itself (`VoiceEncoder("cpu")`, librosa
front end, numpy partials) on {fig.clips} real recordings from Debian's
`pocketsphinx-testdata` (every clip under `cards/`, `librivox/` and the four `.raw` files):

- model(wav) against `embed_utterance(normalize_volume(wav, -30, increase_only=True))`:
  minimum cosine {fig.min_cosine_normalised:.7f}.
- model(preprocess_wav(wav)) against `embed_utterance(preprocess_wav(wav))` (Resemblyzer's
  full pipeline, VAD trimming included): minimum cosine {fig.min_cosine_preprocessed:.7f}.

Speaker separation: cosine of every pair of clips, embedded by this model from the raw
audio (no VAD trimming). In pocketsphinx-testdata, the five `librivox/` clips are one reader
(consecutive sentences of one LibriVox recording) and the five `cards/` clips one speaker
(one recorded test set); the `.raw` files are left out, their speakers being undocumented.
Having only two human speakers, the recipe also synthesises {len(ESPEAK_TEXTS)} sentences
with each of these espeak-ng voices (22.05 kHz, resampled to 16 kHz with soxr); every voice
speaks the same sentences, so different-speaker pairs share their words:

{voices}

{TABLE_HEADER}
{table}

## How it is built

    pip install --no-deps Resemblyzer=={RESEMBLYZER_VERSION}
    pip install librosa==0.11.0 webrtcvad-wheels==2.0.14.post1   # Resemblyzer's imports
    apt-get install pocketsphinx-testdata espeak-ng                 # figures above
    python recipes/build_speaker_embedding.py

The recipe loads `pretrained.pt` from the installed Resemblyzer package (nothing is
downloaded), builds the `SpeakerEmbedding` module, writes `1/model.pt` (`torch.jit.script`),
`config.pbtxt` (the production configuration: `pytorch_libtorch`, GPU instance group,
dynamic batching) and this card, then measures the figures above and fails if any cosine
with Resemblyzer is below 0.999. `config.pbtxt` and this card come out byte-identical on a
rebuild; `model.pt` computes the same outputs but its bytes differ (torch writes a random
serialization id into every TorchScript archive).

## Licence

The weights are Resemblyzer's `pretrained.pt`, Apache-2.0 (Copyright 2019 Resemble.AI;
author Corentin Jemine). The port of the front end is Tritone's own code, Apache-2.0.
"""


# ---------------------------------------------------------------------------- evaluation


def read_recording(relative: str) -> Audio:
    import soundfile as sf

    path = DATA_DIR / relative
    if path.suffix == ".raw":
        pcm = np.fromfile(path, dtype="<i2")
        return (pcm.astype(np.float32) / 32768.0).astype(np.float32)
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"{path}: {rate} Hz, expected {SAMPLE_RATE}")
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)


def pocketsphinx_clips() -> dict[str, Audio]:
    if not DATA_DIR.is_dir():
        raise SystemExit(
            f"{DATA_DIR} is missing: apt-get install pocketsphinx-testdata (Debian package)"
        )
    names = [n for group in POCKETSPHINX_SPEAKERS.values() for n in group] + POCKETSPHINX_RAW
    return {name: read_recording(name) for name in names}


def espeak_clips() -> dict[str, list[Audio]]:
    """Sentences spoken by each espeak-ng voice, at 16 kHz; empty without espeak-ng."""
    import soundfile as sf
    import soxr

    exe = shutil.which("espeak-ng")
    if exe is None:
        print("espeak-ng is missing (apt-get install espeak-ng): synthetic voices skipped")
        return {}
    voices: dict[str, list[Audio]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for voice in ESPEAK_VOICES:
            clips = []
            for i, text in enumerate(ESPEAK_TEXTS):
                out = Path(tmp) / f"{voice}-{i}.wav"
                subprocess.run([exe, "-v", voice, "-w", str(out), text], check=True)
                data, rate = sf.read(str(out), dtype="float32", always_2d=True)
                mono = np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)
                clips.append(np.asarray(soxr.resample(mono, rate, SAMPLE_RATE), dtype=np.float32))
            voices[voice] = clips
    return voices


def embed(model: Callable[[Tensor], Tensor], wav: Audio) -> Audio:
    with torch.inference_mode():
        out = model(torch.from_numpy(wav).unsqueeze(0))
    return np.asarray(out[0].numpy(), dtype=np.float32)


def pair_stats(speakers: dict[str, list[Audio]]) -> PairStats:
    items = [(who, e) for who, embeds in speakers.items() for e in embeds]
    same: list[float] = []
    different: list[float] = []
    for (a, ea), (b, eb) in itertools.combinations(items, 2):
        (same if a == b else different).append(float(np.dot(ea, eb)))
    s, d = np.array(same), np.array(different)
    ordered = float((s[:, None] > d[None, :]).mean())
    return PairStats(
        speakers=len(speakers),
        same_pairs=len(same),
        different_pairs=len(different),
        same_mean=float(s.mean()),
        same_min=float(s.min()),
        different_mean=float(d.mean()),
        different_max=float(d.max()),
        ordered=ordered,
    )


def measure(model: Callable[[Tensor], Tensor]) -> Figures:
    with warnings.catch_warnings():
        # resemblyzer.audio imports scipy.ndimage.morphology, deprecated by scipy.
        warnings.simplefilter("ignore", DeprecationWarning)
        import resemblyzer  # type: ignore[import-untyped]

        encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)

    clips = pocketsphinx_clips()
    normalised: list[float] = []
    preprocessed: list[float] = []
    ours: dict[str, Audio] = {}
    for name, wav in clips.items():
        ours[name] = embed(model, wav)
        ref = encoder.embed_utterance(
            resemblyzer.normalize_volume(wav, TARGET_DBFS, increase_only=True)
        )
        normalised.append(float(np.dot(ours[name], ref)))
        trimmed = np.asarray(resemblyzer.preprocess_wav(wav), dtype=np.float32)
        ref_pre = encoder.embed_utterance(trimmed)
        preprocessed.append(float(np.dot(embed(model, trimmed), ref_pre)))
        print(f"{name}: {len(wav) / SAMPLE_RATE:.2f} s, cosine {normalised[-1]:.7f}")

    human = {who: [ours[n] for n in names] for who, names in POCKETSPHINX_SPEAKERS.items()}
    synthetic = {v: [embed(model, w) for w in ws] for v, ws in espeak_clips().items()}
    return Figures(
        clips=len(clips),
        min_cosine_normalised=min(normalised),
        min_cosine_preprocessed=min(preprocessed),
        pocketsphinx=pair_stats(human),
        espeak=pair_stats(synthetic) if synthetic else None,
        espeak_voices=tuple(synthetic),
    )


def check_batching(model: Callable[[Tensor], Tensor], clips: Sequence[Audio]) -> float:
    """Largest difference between a batch of equal-length clips and one clip at a time."""
    n = min(len(c) for c in clips)
    batch = torch.from_numpy(np.stack([c[:n] for c in clips]))
    with torch.inference_mode():
        together = model(batch)
        alone = torch.cat([model(batch[i : i + 1]) for i in range(batch.shape[0])])
    return float((together - alone).abs().max())


def print_figures(fig: Figures) -> None:
    print(f"cosine vs Resemblyzer, volume-normalised: min {fig.min_cosine_normalised:.7f}")
    print(f"cosine vs Resemblyzer, preprocess_wav:    min {fig.min_cosine_preprocessed:.7f}")
    sets = [("pocketsphinx", fig.pocketsphinx)]
    if fig.espeak is not None:
        sets.append(("espeak-ng", fig.espeak))
    for title, s in sets:
        print(
            f"{title}: {s.speakers} speakers; same {s.same_pairs} pairs mean {s.same_mean:.3f} "
            f"min {s.same_min:.3f}; different {s.different_pairs} pairs mean "
            f"{s.different_mean:.3f} max {s.different_max:.3f}; "
            f"P(same > different) {s.ordered:.3f}"
        )


# ---------------------------------------------------------------------------- main


def build(repository: Path) -> Path:
    model_dir = repository / MODEL_NAME
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    with quiet_torchscript():
        scripted = torch.jit.script(build_module())
        torch.jit.save(scripted, str(model_dir / "1" / "model.pt"))
    (model_dir / "config.pbtxt").write_text(config_pbtxt(), encoding="utf-8")
    return model_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--repository",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "model_repository",
        help="model repository to write into (default: the project's model_repository/)",
    )
    args = parser.parse_args()
    model_dir = build(args.repository)
    model = load_model(model_dir / "1" / "model.pt")
    fig = measure(model)
    print_figures(fig)
    clips = list(pocketsphinx_clips().values())[:2]
    diff = check_batching(model, clips)
    print(f"batch of 2 vs one at a time: max abs difference {diff:.2e}")
    (model_dir / "README.md").write_text(readme(fig), encoding="utf-8")
    worst = min(fig.min_cosine_normalised, fig.min_cosine_preprocessed)
    if worst < 0.999 or diff > 1e-4 or not math.isfinite(worst):
        raise SystemExit(f"check failed: cosine {worst:.6f}, batch difference {diff:.2e}")
    print(f"wrote {model_dir}")


if __name__ == "__main__":
    main()
