"""Command words spoken inside phrases, as training rows for the head.

The training voices of synthesize.py (never the held-out or recall voices) say a command
word inside a carrier phrase (TRAIN_PHRASES: other carriers than recall_set.py's). Where the
word lies is found by synthesizing the words before it alone, and the words up to it: the
trimmed lengths bound it. Two 1 s windows that hold the whole word, at random offsets, are
labelled with it; the rest of the phrase is the kind of context the head must accept. The
rows are embedded like train.py's and cached in .cache/speech_commands/phrases.npz.

Usage: python -m recipes.speech_commands.phrase_positives [--per-word 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from recipes.speech_commands import synthesize as synth
from recipes.speech_commands.negatives import telephone_back
from recipes.speech_commands.synthesize import COMMANDS, SAMPLE_RATE, FloatArray
from recipes.speech_commands.train import save_embedded_rows

# Carriers for training; recall_set.PHRASES (the evaluation carriers) are not among them.
TRAIN_PHRASES = (
    ("you should", "right away"),
    ("I heard", "from the back"),
    ("then", "was the word"),
    ("did he say", "or not"),
    ("tell them", "when ready"),
    ("", "is what I meant"),
    ("it was", "yesterday"),
    ("maybe", "later"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", type=Path, default=Path(".cache/speech_commands"))
    parser.add_argument("--per-word", type=int, default=30)
    parser.add_argument("--seed", type=int, default=77)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    pools, _ = synth.voice_pools(synth.espeak_variants())
    windows: list[FloatArray] = []
    labels: list[int] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="phrases_") as tmp:
        work = Path(tmp)
        for index, word in enumerate(COMMANDS):
            for n in range(args.per_word):
                engine = str(rng.choice(["espeak", "espeak", "flite"]))
                voice = synth.random_voice(rng, engine, pools[engine])
                before, after = TRAIN_PHRASES[int(rng.integers(len(TRAIN_PHRASES)))]
                tag = f"{word}{n}"
                try:
                    whole = synth.synthesize(voice, f"{before} {word} {after}".strip(), work, tag)
                    upto = synth.synthesize(voice, f"{before} {word}".strip(), work, tag + "u")
                    start = synth.synthesize(voice, before, work, tag + "b").size if before else 0
                except Exception:  # a voice that cannot say it is skipped
                    continue
                end = min(upto.size, whole.size)
                if end - start < 1_600 or end - start > 14_000:
                    continue
                audio = whole * np.float32(10 ** (rng.uniform(-20.0, -2.0) / 20))
                pad = np.zeros(SAMPLE_RATE, dtype=np.float32)
                audio = np.concatenate([pad, audio, pad])
                start, end = start + SAMPLE_RATE, end + SAMPLE_RATE
                if rng.random() < 0.3:
                    audio = telephone_back(audio, rng)
                for _ in range(2):
                    first = int(rng.integers(end - SAMPLE_RATE, start + 1))
                    clip = audio[first : first + SAMPLE_RATE].copy()
                    noise = synth.colored_noise(rng, SAMPLE_RATE, float(rng.choice([0.0, 1.0])))
                    clip += noise * np.float32(10 ** (rng.uniform(-70.0, -40.0) / 20))
                    windows.append(np.clip(clip, -1.0, 1.0))
                    labels.append(index)
        print(f"phrases: {len(labels)} windows in {time.monotonic() - began:.0f} s", flush=True)
    written = save_embedded_rows(
        args.cache / "phrases.npz", windows, labels, ["phrases"] * len(labels)
    )
    print(f"{written} in {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
