"""Fuse the ported backbone and the trained head into model_repository/speech-commands/.

Writes ONE TorchScript module ``forward(waveform: Tensor[B, 16000]) -> logits Tensor[B, 12]``
(16 kHz, float in [-1, 1]) as 1/model.pt, plus config.pbtxt, labels.txt and the model card
README.md with the figures from .cache/speech_commands/metrics.json. Before writing it
checks that the scripted module matches backbone + head, that the backbone matches
onnxruntime within 1e-4, that the graph names no device, and compares the gateway's `mean`
and `max` aggregation on held-out words inside 2.5 s of background.

Usage: python -m recipes.speech_commands.build [--cache .cache/speech_commands]
"""

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from recipes.speech_commands import card
from recipes.speech_commands.card import LIMIT_REAL
from recipes.speech_commands.port_openwakeword import max_abs_difference
from recipes.speech_commands.synthesize import (
    CLIP_SAMPLES,
    FLITE_HELD_OUT,
    HELD_OUT_ACCENTS,
    HELD_OUT_VARIANTS,
    LABELS,
    SAMPLE_RATE,
    UNKNOWN_WORDS,
    colored_noise,
)
from recipes.speech_commands.train import EMBED_STRIDE, SEED, Head
from tritone_server.triton.model_config import TensorConfig, render_config
from tritone_server.triton.torchscript import device_constants, quiet_torchscript
from tritone_tools.training.openwakeword import (
    Backbone,
    load_backbone,
    openwakeword_models_dir,
)

MODEL_NAME = "speech-commands"
RESULTS = Path(__file__).resolve().parent / "results"
OPERATING_POINT = RESULTS / "operating_point.json"
MAX_BATCH_SIZE = 64
WINDOW_SAMPLES = CLIP_SAMPLES
HOP_SAMPLES = 4_000
HOPS_STUDIED = (8_000, 4_000)
DESCRIPTION = (
    "Keyword spotting, 12 labels (yes no up down left right on off stop go unknown silence) "
    "for 1 s of 16 kHz mono audio. Backbone: the speech embedding shipped by "
    "openwakeword==0.4.0 (melspectrogram.onnx + embedding_model.onnx, Apache-2.0) ported to "
    "torch, six windows per second; head: an ensemble of small 1-D conv nets trained on "
    "synthetic speech (espeak-ng, flite, Festival). "
    "Built by recipes/speech_commands."
)


class SpeechCommands(nn.Module):
    """waveform FP32 [B, 16000] at 16 kHz in [-1, 1] -> logits FP32 [B, 12].

    Shorter inputs are zero-padded and longer ones cut to their first 16000 samples, so the
    head always sees six embedding windows (stride 4 mel frames).
    """

    def __init__(self, backbone: Backbone, head: Head) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.samples = CLIP_SAMPLES

    def forward(self, waveform: Tensor) -> Tensor:
        x = waveform.to(torch.float32)
        n = x.shape[-1]
        if n < self.samples:
            x = torch.nn.functional.pad(x, (0, self.samples - n))
        elif n > self.samples:
            x = x[:, : self.samples]
        out: Tensor = self.head(self.backbone(x))
        return out


def fuse(cache: Path) -> SpeechCommands:
    head = Head()
    head.load_state_dict(torch.load(cache / "head.pt", weights_only=True))
    model = SpeechCommands(load_backbone(window_stride=EMBED_STRIDE), head)
    model.eval()
    return model


def script(model: SpeechCommands) -> torch.jit.ScriptModule:
    with quiet_torchscript():
        scripted: torch.jit.ScriptModule = torch.jit.script(model)
    pinned = device_constants(scripted)
    if pinned:
        raise RuntimeError(f"the TorchScript graph names a device: {pinned}")
    return scripted


def validation_clips(cache: Path) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int64]]:
    """The clips of train.py's validation split (the first tenth of the `train` clips in its
    seeded permutation): training voices, never trained on, used to choose."""
    with np.load(cache / "clips_train.npz") as f:
        pcm, labels = f["pcm"], f["labels"]
    order = torch.randperm(pcm.shape[0], generator=torch.Generator().manual_seed(SEED))
    rows = order[: pcm.shape[0] // 10].numpy()
    return pcm[rows], labels[rows]


def aggregation_study(
    scripted: torch.jit.ScriptModule,
    pcm: npt.NDArray[np.int16],
    labels: npt.NDArray[np.int64],
    hops: tuple[int, ...] = HOPS_STUDIED,
    limit: int = 400,
) -> dict[str, float]:
    """1 s clips inside 2.5 s of quiet background, windowed and pooled as the gateway does
    (tritone_server.audio.dsp.frame_windows, scoring.activate / pool), for each hop: accuracy
    keyed "<how>@<hop>"."""
    from tritone_server.audio.dsp import frame_windows
    from tritone_server.core.models import Aggregation
    from tritone_server.core.scoring import activate, pool

    rng = np.random.default_rng(7)
    pick = rng.choice(pcm.shape[0], size=min(limit, pcm.shape[0]), replace=False)
    hows: tuple[Aggregation, ...] = ("mean", "max")
    correct = {f"{how}@{hop}": 0 for hop in hops for how in hows}
    for i in pick:
        clip = pcm[i].astype(np.float32) / 32768.0
        pad = int(0.75 * SAMPLE_RATE)
        level = 10 ** (rng.uniform(-70.0, -45.0) / 20)
        stream = (colored_noise(rng, CLIP_SAMPLES + 2 * pad, 1.0) * level).astype(np.float32)
        stream[pad : pad + CLIP_SAMPLES] += clip
        for hop in hops:
            windows, _ = frame_windows(stream, WINDOW_SAMPLES, hop)
            with torch.no_grad():
                logits = scripted(torch.from_numpy(np.ascontiguousarray(windows))).numpy()
            scores = activate(logits, "softmax")
            for how in hows:
                pooled = pool(scores, how)
                correct[f"{how}@{hop}"] += int(int(np.argmax(pooled)) == int(labels[i]))
    return {k: v / len(pick) for k, v in correct.items()}


def operating_point(path: Path = OPERATING_POINT) -> dict[str, str]:
    """The config parameters of the operating point calibrate.py chose (none without it)."""
    if not path.is_file():
        return {}
    chosen = json.loads(path.read_text())["chosen"]
    return {
        "detection_thresholds": json.dumps(chosen["thresholds"]),
        "detection_min_windows": str(int(chosen["min_windows"])),
    }


def config_pbtxt(aggregation: str, hop_samples: int, detection: dict[str, str]) -> str:
    return render_config(
        MODEL_NAME,
        inputs=[TensorConfig("waveform", (-1,))],
        outputs=[TensorConfig("logits", (len(LABELS),), label_file=True)],
        parameters={
            "task": "audio-classification",
            "sample_rate": str(SAMPLE_RATE),
            "window_samples": str(WINDOW_SAMPLES),
            "hop_samples": str(hop_samples),
            "activation": "softmax",
            "aggregation": aggregation,
            "description": DESCRIPTION,
            **detection,
        },
        labels=LABELS,
        max_batch_size=MAX_BATCH_SIZE,
    )


def confusion_table(matrix: list[list[int]]) -> str:
    head = "| true \\ predicted | " + " | ".join(LABELS) + " |"
    rule = "| --- |" + " ---: |" * len(LABELS)
    rows = [
        f"| **{label}** | " + " | ".join(str(v) for v in row) + " |"
        for label, row in zip(LABELS, matrix, strict=True)
    ]
    return "\n".join([head, rule, *rows])


def readme(
    metrics: dict[str, Any],
    study: dict[str, float],
    chosen_on: dict[str, float],
    aggregation: str,
    port_error: float,
) -> str:
    held = metrics["held_out"]
    fit = metrics["fit"]
    families = "\n".join(
        f"| {name} | {acc * 100:.1f} % |" for name, acc in held["per_family_accuracy"].items()
    )
    variants = ", ".join(HELD_OUT_VARIANTS)
    epochs = ", ".join(
        f"{b + 1} of {r}" for b, r in zip(fit["best_epochs"], fit["epochs_run"], strict=True)
    )
    hop_s = HOP_SAMPLES / SAMPLE_RATE
    extra = int(metrics.get("extra_clips", 0))
    alpha = metrics["mixup_alpha"]
    val_pct = f"{fit['val_accuracy'] * 100:.1f} %"
    held_pct = f"{held['accuracy'] * 100:.1f} %"
    extra_row = (
        f"| + {extra} extra clips: wider prosody and warping, words cut at an edge "
        f"(this model) | {val_pct} | {held_pct} |"
    )
    pct = {k: f"{v * 100:.1f} %" for k, v in study.items()}
    val = {k: f"{v * 100:.1f} %" for k, v in chosen_on.items()}
    real_speech = card.section()
    gap = 90.0 - held["accuracy"] * 100
    if gap > 0:
        target = (
            f"- The target of 90 % on held-out synthetic voices is not reached "
            f"({held['accuracy'] * 100:.1f} %, {gap:.1f} points short)."
        )
    else:
        target = (
            f"- The 90 % target on held-out synthetic voices is met "
            f"({held['accuracy'] * 100:.1f} %)."
        )
    return f"""# speech-commands

Keyword spotting for Tritone: which of 12 labels a one-second clip of 16 kHz mono speech
holds: `{" ".join(LABELS)}`. `unknown` is any other word, `silence` is background without
speech.

- Input `waveform`: FP32 [batch, 16000], mono, 16 kHz, float in [-1, 1] (s16 / 32768).
  Shorter inputs are zero-padded, longer ones cut to their first 16000 samples. The gateway
  sends 16000-sample windows with a {HOP_SAMPLES}-sample ({hop_s:.2f} s) hop
  (`window_samples`, `hop_samples`).
- Output `logits`: FP32 [batch, 12], labels.txt order; activation softmax. The logits are
  the log of the ensemble's mean probability, so their softmax is that probability.
- Aggregation over a longer clip's windows: `{aggregation}` (see below).
- One TorchScript file (1/model.pt), not frozen (weights stay module attributes that
  `map_location` moves), no device named in the graph: it runs on CPU or
  GPU unchanged. Built by `recipes/speech_commands/` (recipes/README.md has the commands).

## How it works

1. Backbone: the speech embedding that openwakeword==0.4.0 ships in its wheel
   (`openwakeword/resources/models/melspectrogram.onnx` and `embedding_model.onnx`,
   Apache-2.0; a port of Google's speech_embedding). Both ONNX graphs are rebuilt from torch
   ops with the ONNX weights (`tritone_tools/training/openwakeword.py`): STFT by strided
   convolution (512 / 160), 32 mel bands, 10 log10 with an 80 dB floor, openwakeword's
   `x / 10 + 2`, then 76-frame windows through the conv net, 96-d each. The windows start every
   {metrics["embed_stride"]} mel frames ({metrics["embed_stride"] * 10} ms), twice as dense as
   openwakeword's 8, so one second gives {metrics["windows"]} embeddings instead of 3 (same
   weights; the windows at multiples of 8 frames are exactly openwakeword's).
   Largest difference to onnxruntime (run on the same windows) on the build's fixed test
   audio: {port_error:.1e}.
   One deliberate change: the 80 dB floor is taken per clip, not over the whole batch as in
   the ONNX file, so a clip's scores never depend on its batch neighbours.
2. Head: an ensemble of {metrics["ensemble"]} identical small networks trained from different
   seeds; each is a LayerNorm per embedding, two 1-D convolutions over time (96 -> 192 -> 192
   channels, kernel 3, ReLU, dropout 0.3) and an MLP over the flattened
   {metrics["windows"]} x 192 sequence (-> 256 -> 12). The output is the log of the mean of
   the members' softmax. The openwakeword wake-word heads (non-commercial) are not used.

## Training data

The head this build trains hears synthetic speech only, from offline synthesizers (the
served head is then fine-tuned on more, real speech without command words and neural voices
among it: see Real speech below): espeak-ng (six
English accents x the espeak-ng voice variants not held out, random speed and pitch), flite
(kal, kal16, slt; random duration and F0) and Festival (kal_diphone, cmu_us_slt_arctic_hts).
Each utterance is speed-perturbed, placed at a random offset in 1 s, and gets random gain,
synthetic-room reverberation (a third of the clips, RT60 0.1-0.5 s) and white / pink /
brown noise at 8-40 dB SNR (85 % of the clips).
`unknown` uses the {len(UNKNOWN_WORDS)} other words of Google's Speech Commands set;
`silence` is noise, hum or digital silence.
{metrics["train_clips"]} training clips: {metrics["train_clips"] - extra} in the main split
and {extra} in an extra split (`synthesize.py`'s EXTRA_PLAN, the same training voices with
new utterances): wider prosody (espeak-ng speed 0.6-1.5, pitch 0-99; flite duration
0.65-1.45 and wider F0; Festival 0.7-1.4), a wider resampling warp (0.8-1.25: tempo, pitch
and formants move together, like a shorter or longer vocal tract) and, in 40 % of the extra
clips, the word shifted so that up to 30 % of it falls off the start or the end of the
second. 10 % of the main split is the validation split for early stopping (the same split
for every member, and the same as without the extra split; best epochs {epochs};
validation accuracy of the ensemble {fit["val_accuracy"] * 100:.1f} %). In embedding space
each batch gets Gaussian noise (0.05) and mixup (Beta({alpha}, {alpha})); label
smoothing 0.05. Seeds {metrics["seed"]} + member index.

## Evaluation on held-out voices

No voice below was used in training, validation or model selection: flite
`{"`, `".join(FLITE_HELD_OUT)}` (speakers never seen), every espeak-ng voice of the
`{", ".join(HELD_OUT_ACCENTS)}` accent and the espeak-ng variants {variants} in every accent.
Same augmentation as training.

- Clips: {held["clips"]}
- **Accuracy: {held["accuracy"] * 100:.1f} %** (previous model: 85.2 %; the one before: 83.8 %)
- **Macro-F1: {held["macro_f1"] * 100:.1f} %** (previous model: 85.1 %; the one before: 83.6 %)

| held-out voice family | accuracy |
| --- | ---: |
{families}

Confusion matrix (rows: true label, columns: predicted):

{confusion_table(held["confusion"])}

These are synthetic voices. On real human speech the model does much worse (Real speech
below); train a head on recordings of your own users (`tritone train`) for production.

## What changed from the first model, and what each step gave

Measured on the same cached clips, validation split and held-out set (one head, seed
{metrics["seed"]}, unless stated):

| change | validation (training voices) | held-out voices |
| --- | ---: | ---: |
| first model's recipe re-run: MLP over 3 embeddings (stride 8) | 90.9 % | 83.8 % |
| + mixup on the embeddings | 91.4 % | 84.6 % |
| + embeddings every 4 frames (6 per second), same MLP | 90.3 % | 85.1 % |
| + 1-D convolutions over time instead of the flat MLP | 91.8 % | 85.7 % |
| + ensemble of {metrics["ensemble"]} seeds (previous model) | 91.8 % | 85.2 % |
{extra_row}

The extra-clip row is the only variant of this round compared on the held-out voices (one
run, no knob tuned on them); its ranges were set before any figure was seen. It gains
1.5 points on held-out voices and 1.3 on validation, more than the seed-to-seed noise of
about half a point. Held-out families: en-029 79.5 -> 82.2 %, en-gb-scotland 83.7 ->
86.0 %, flite rms 82.0 -> 83.9 %; down / on confusions fell (24 -> 16 down taken for on),
up / off did not (26 -> 25).

The ensemble is not better than the single conv head of the row above on the held-out voices
(its members differ from that head in their shuffling seeds only): between seeds the figure
moves by about half a point, so the last two rows are equal within that noise. It was kept
because it was the plan before the figure was seen, and choosing the member count by the
held-out figure would be selecting on the test set. Note that the rows above were compared
on the held-out voices as well as on validation, so the held-out figure is a slightly
optimistic estimate for new voices.

Tried and not kept: pooling over time (max + mean) instead of flattening (validation 89.9 %,
held-out 84.0 %), random masking of whole embeddings (no gain). A convolutional head on the
3 stride-8 embeddings gave the same 83.8 % as the MLP (validation 92.0 %). (The first model's
card gave 91.2 % validation; the re-run above normalises each embedding on its own.)

## Aggregation

The gateway cuts a longer clip into 1 s windows, applies softmax to each and pools the
scores. The pooling is CHOSEN on up to 400 clips of the validation split (training voices,
never trained on), each placed in the middle of 2.5 s of quiet background; the top label of
the pooled scores was right for:

| hop | mean | max |
| --- | ---: | ---: |
| 8000 samples (0.5 s, 4 windows) | {val["mean@8000"]} | {val["max@8000"]} |
| 4000 samples (0.25 s, 7 windows) | {val["mean@4000"]} | {val["max@4000"]} |

and then measured once on {min(400, held["clips"])} held-out clips the same way:

| hop | mean | max |
| --- | ---: | ---: |
| 8000 samples (0.5 s, 4 windows) | {pct["mean@8000"]} | {pct["max@8000"]} |
| 4000 samples (0.25 s, 7 windows) | {pct["mean@4000"]} | {pct["max@4000"]} |

(The first model: 35.0 % mean, 51.2 % max at a 0.5 s hop. The previous model, trained
without edge-cut words: 30.5 % mean and 41.2 % max at 0.5 s, 52.2 % mean and 41.2 % max at
0.25 s.) The config uses a {hop_s:.2f} s hop and `{aggregation}`, the better pooling at
that hop on the validation clips. Most training clips hold the whole word inside 1 s (only
the extra split's 40 % cut up to 30 % of it); a window that holds a smaller part of a word
can still score a wrong command confidently, which `max` then picks up, while under `mean`
the windows around the word can outvote the background windows once the hop is short
enough for several of them to hold most of the word. All of these figures are far below
the 1 s one: the model does not
find words in longer audio well. Send 1 s clips centred on the word for the best result.

{real_speech or ""}
## Limits

{target}
  The errors are mostly up / off, down / on, go / no and commands taken for `unknown`; the
  validation accuracy on the training voices ({fit["val_accuracy"] * 100:.1f} %) is not much
  higher, so the frozen embedding and the narrow set of synthesizer voices, more than the
  head, limit it.
- Clean, centred words from held-out voices do better: the unit test's ten clips
  (flite rms and awb, espeak-ng en-029, en-us+f4, en+m7, one per command) are checked.
- {LIMIT_REAL if real_speech else "Synthetic voices only; no measurement on human speech."}
- Twice the embedding windows cost twice the backbone compute per window (the network
  runs once per 76-frame window).

## Licence

Backbone weights: Apache-2.0 (openwakeword 0.4.0). Head: trained by this project from
synthetic speech.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", type=Path, default=Path(".cache/speech_commands"))
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    args = parser.parse_args()
    torch.manual_seed(0)
    metrics = json.loads((args.cache / "metrics.json").read_text())
    if metrics["labels"] != list(LABELS):
        raise SystemExit("metrics.json was written for other labels")
    model = fuse(args.cache)
    scripted = script(model)
    rng = np.random.default_rng(3)
    probe = torch.from_numpy((0.1 * rng.standard_normal((3, CLIP_SAMPLES))).astype(np.float32))
    with torch.no_grad():
        eager = model(probe)
        fused = scripted(probe)
    if fused.shape != (3, len(LABELS)) or not torch.allclose(eager, fused, atol=1e-4):
        raise SystemExit("the scripted model differs from backbone + head")
    folder = openwakeword_models_dir()
    port_error = max(max_abs_difference(model.backbone, probe[i].numpy(), folder) for i in range(3))
    if port_error > 1e-4:
        raise SystemExit(f"the ported backbone differs from onnxruntime by {port_error}")
    # Chosen on the validation split; the held-out voices are measured once, for the card.
    chosen_on = aggregation_study(scripted, *validation_clips(args.cache))
    aggregation = (
        "max" if chosen_on[f"max@{HOP_SAMPLES}"] >= chosen_on[f"mean@{HOP_SAMPLES}"] else "mean"
    )
    with np.load(args.cache / "clips_eval.npz") as f:
        study = aggregation_study(scripted, f["pcm"], f["labels"])
    print(f"validation {chosen_on} -> {aggregation}; held out {study}; port error {port_error:.2e}")

    out = args.repository / MODEL_NAME
    (out / "1").mkdir(parents=True, exist_ok=True)
    with quiet_torchscript():
        torch.jit.save(scripted, str(out / "1" / "model.pt"))
    (out / "labels.txt").write_text("\n".join(LABELS) + "\n")
    (out / "config.pbtxt").write_text(config_pbtxt(aggregation, HOP_SAMPLES, operating_point()))
    (out / "README.md").write_text(readme(metrics, study, chosen_on, aggregation, port_error))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
