"""Command words said by synthetic voices the model never trained on, alone and in phrases.

The held-out voice pool of synthesize.py (flite rms and awb, espeak-ng's en-029 accent and
the HELD_OUT_VARIANTS) is cut in two, fixed here: ``validation`` voices (flite awb and the
first five held-out variants in the training accents) may be used to choose thresholds and
models; ``evaluation`` voices (flite rms, every en-029 voice, the other five variants) give
the final figures only. Each clip holds exactly one command word, with 0.4-0.8 s of quiet
background before and after it; the phrases put the word among words that are not commands.

``neural_utterances`` does the same with the neural voices of neural_voices.SPLITS (Kokoro,
and Piper joe in evaluation): every voice says every word, alone and in a phrase, equally
often.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recipes.speech_commands import synthesize as synth
from recipes.speech_commands.synthesize import COMMANDS, SAMPLE_RATE, FloatArray

VALIDATION_VARIANTS = synth.HELD_OUT_VARIANTS[:5]
EVALUATION_VARIANTS = synth.HELD_OUT_VARIANTS[5:]
TRAIN_ACCENTS = tuple(a for a in synth.ESPEAK_ACCENTS if a not in synth.HELD_OUT_ACCENTS)
# Carrier phrases: none of their other words is a command word.
PHRASES = (
    "please {} now",
    "I will say {} for you",
    "the answer is {} I think",
    "{} and then wait a moment",
    "can you {} it today",
    "we said {} to the captain",
    "just {} there",
    "she told me {} twice",
)


@dataclass(frozen=True, slots=True)
class Utterance:
    word: str
    text: str
    kind: str  # isolated | phrase
    voice: synth.Voice
    audio: FloatArray


def voices(split: str) -> tuple[list[str], list[str]]:
    """(espeak voice names, flite voice names) of the validation or evaluation voices."""
    if split == "validation":
        espeak = [f"{a}+{v}" for a in TRAIN_ACCENTS for v in VALIDATION_VARIANTS]
        return espeak, ["awb"]
    if split == "evaluation":
        espeak = [f"{a}+{v}" for a in TRAIN_ACCENTS for v in EVALUATION_VARIANTS]
        espeak += [f"en-029+{v}" for v in ("m1", "m3", "f2", "f5", "croak", "klatt")]
        espeak += list(synth.HELD_OUT_ACCENTS)
        return espeak, ["rms"]
    raise ValueError(f"no recall voices for split {split!r}")


def _voice(rng: np.random.Generator, espeak: list[str], flite: list[str]) -> synth.Voice:
    if rng.random() < 0.3:
        name = str(rng.choice(flite))
        return synth.Voice("flite", name, rng.uniform(0.85, 1.15), rng.uniform(85, 130))
    name = str(rng.choice(espeak))
    return synth.Voice("espeak", name, rng.uniform(0.8, 1.2), rng.uniform(30, 70))


def utterances(split: str, per_word: int = 8, seed: int = 4242) -> list[Utterance]:
    """``per_word`` isolated and ``per_word`` phrase clips of each command word."""
    rng = np.random.default_rng(seed + (0 if split == "validation" else 1))
    espeak, flite = voices(split)
    jobs: list[tuple[synth.Voice, str, str, str]] = []
    for word in COMMANDS:
        for kind in ("isolated", "phrase"):
            for _ in range(per_word):
                text = word if kind == "isolated" else str(rng.choice(PHRASES)).format(word)
                jobs.append((_voice(rng, espeak, flite), text, word, kind))
    out: list[Utterance] = []
    with tempfile.TemporaryDirectory(prefix="recall_") as tmp:
        work = Path(tmp)
        for i, (voice, text, word, kind) in enumerate(jobs):
            audio = synth.synthesize(voice, text, work, str(i))
            out.append(Utterance(word, text, kind, voice, _in_background(audio, rng)))
    return out


def neural_utterances(split: str, per_word: int | None = None, seed: int = 5151) -> list[Utterance]:
    """``per_word`` isolated and ``per_word`` phrase clips of each command word by the neural
    voices of ``split`` (default: one per voice), the voices taken in turn so that each says
    each word equally often; tempo drawn in 0.85-1.15."""
    from recipes.speech_commands import neural_voices

    names = neural_voices.SPLITS[split]
    count = len(names) if per_word is None else per_word
    rng = np.random.default_rng(seed + ("train", "validation", "evaluation").index(split))
    out: list[Utterance] = []
    for w, word in enumerate(COMMANDS):
        for k, kind in enumerate(("isolated", "phrase")):
            for j in range(count):
                name = names[(j + w + k) % len(names)]
                speed = float(rng.uniform(0.85, 1.15))
                text = word if kind == "isolated" else str(rng.choice(PHRASES)).format(word)
                audio = neural_voices.synthesize(neural_voices.NeuralVoice(name, speed), text)
                engine = "piper" if name.startswith("piper:") else "kokoro"
                voice = synth.Voice(engine, name.removeprefix("piper:"), speed)
                out.append(Utterance(word, text, kind, voice, _in_background(audio, rng)))
    return out


def _in_background(audio: FloatArray, rng: np.random.Generator) -> FloatArray:
    before = int(rng.uniform(0.4, 0.8) * SAMPLE_RATE)
    after = int(rng.uniform(0.4, 0.8) * SAMPLE_RATE)
    n = before + audio.size + after
    level = 10 ** (rng.uniform(-65.0, -50.0) / 20)
    out = synth.colored_noise(rng, n, 1.0) * level
    out[before : before + audio.size] += audio * 10 ** (rng.uniform(-12.0, -3.0) / 20)
    return np.clip(out, -1.0, 1.0).astype(np.float32)
