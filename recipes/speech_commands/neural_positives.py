"""Training rows from the TRAIN neural voices (neural_voices.SPLITS["train"], Kokoro only).

Every row is a 1 s window embedded by the ported backbone ([6, 96], as train.py embeds),
cached in .cache/speech_commands/neural.npz with a group per kind, so retrain.py can take
them like negatives.py's rows:
- ``neural_words``: each voice says each command word ``--isolated`` times (tempo 0.85-1.15),
  each placed in a 1 s clip ``--copies`` times with synthesize.augment (offset,
  reverberation, gain, noise); label the word.
- ``neural_phrases``: each voice says each command word once at the start or the end of a
  carrier of phrase_positives.TRAIN_PHRASES (never recall_set.PHRASES); the word is the
  first or last thing said, so 1 s windows that start at most 0.25 s before the speech (or
  end at most 0.25 s after it) hold it; two such windows, 30 % through the phone line;
  label the word.
- ``neural_unknown``: each voice says ``--unknown`` words of synthesize.UNKNOWN_WORDS and
  negatives.CONFUSABLE, augmented; label ``unknown``.
- ``neural_sentences``: each voice reads ``--sentences`` of negatives.minor_texts()'s
  English lines (speech used by no split of real_speech.py) with no command word; windows
  every 0.5 s; label ``unknown`` (``silence`` when quiet).
The validation and evaluation neural voices, and Piper joe, are never used here. Each
voice's windows are kept in .cache/speech_commands/neural_rows/ (keyed by the settings), so an
interrupted run resumes where it stopped.

Usage: python -m recipes.speech_commands.neural_positives [--cache .cache/speech_commands]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from recipes.speech_commands import negatives, neural_voices
from recipes.speech_commands import synthesize as synth
from recipes.speech_commands.phrase_positives import TRAIN_PHRASES
from recipes.speech_commands.synthesize import COMMANDS, LABELS, SAMPLE_RATE, FloatArray
from recipes.speech_commands.train import save_embedded_rows

UNKNOWN = LABELS.index("unknown")
LEAD = int(0.25 * SAMPLE_RATE)


def _say(name: str, text: str, rng: np.random.Generator) -> FloatArray | None:
    voice = neural_voices.NeuralVoice(name, float(rng.uniform(0.85, 1.15)))
    try:
        return neural_voices.synthesize(voice, text)
    except Exception as error:  # a text the voice cannot say is skipped, and said so
        print(f"{name}: {text!r} skipped ({error})", flush=True)
        return None


def _quiet_noise(clip: FloatArray, rng: np.random.Generator) -> FloatArray:
    noise = synth.colored_noise(rng, clip.size, float(rng.choice([0.0, 1.0])))
    out = clip + noise * np.float32(10 ** (rng.uniform(-70.0, -40.0) / 20))
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def phrase_windows(
    audio: FloatArray, word_first: bool, rng: np.random.Generator, count: int = 2
) -> list[FloatArray]:
    """1 s windows holding the word said first (or last) in ``audio``."""
    padded = np.concatenate(
        [np.zeros(SAMPLE_RATE, np.float32), audio, np.zeros(SAMPLE_RATE, np.float32)]
    )
    speech_start, speech_end = SAMPLE_RATE, SAMPLE_RATE + audio.size
    out: list[FloatArray] = []
    for _ in range(count):
        if word_first:
            first = speech_start - int(rng.integers(0, LEAD + 1))
        else:
            first = speech_end + int(rng.integers(0, LEAD + 1)) - SAMPLE_RATE
        out.append(padded[first : first + SAMPLE_RATE].copy())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", type=Path, default=Path(".cache/speech_commands"))
    parser.add_argument("--isolated", type=int, default=1, help="utterances per voice and word")
    parser.add_argument("--copies", type=int, default=3, help="augmented clips per utterance")
    parser.add_argument("--unknown", type=int, default=8, help="other words per voice")
    parser.add_argument("--sentences", type=int, default=4, help="sentences per voice")
    parser.add_argument("--seed", type=int, default=313)
    parser.add_argument(
        "--only", nargs="+", help="make only these voices' rows (a second process), no npz"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    voices = [v for v in neural_voices.SPLITS["train"] if not v.startswith("piper:")]
    others = list(synth.UNKNOWN_WORDS) + list(negatives.CONFUSABLE)
    texts = negatives.minor_texts()["en"]
    windows: list[FloatArray] = []
    labels: list[int] = []
    groups: list[str] = []
    began = time.monotonic()

    def add(clip: FloatArray, label: int, group: str) -> None:
        windows.append(clip)
        labels.append(label)
        groups.append(group)

    rows_dir = args.cache / "neural_rows"
    rows_dir.mkdir(parents=True, exist_ok=True)
    setting = f"s{args.seed}-i{args.isolated}-c{args.copies}-u{args.unknown}-n{args.sentences}"
    order = list(enumerate(voices))
    for v, name in reversed(order) if args.only else order:  # a helper works from the end
        done = rows_dir / f"{name}-{setting}.npz"
        if args.only and name not in args.only:
            continue
        if done.exists():
            with np.load(done) as f:
                windows += list(f["windows"])
                labels += f["labels"].tolist()
                groups += f["groups"].tolist()
            continue
        first = len(labels)
        rng = np.random.default_rng([args.seed, v])
        for index, word in enumerate(COMMANDS):
            for _ in range(args.isolated):
                audio = _say(name, word, rng)
                for _ in range(args.copies if audio is not None else 0):
                    assert audio is not None
                    add(synth.augment(audio, rng), index, "neural_words")
            before, after = TRAIN_PHRASES[int(rng.integers(len(TRAIN_PHRASES)))]
            word_first = not before or (bool(after) and rng.random() < 0.5)
            text = f"{word} {after}" if word_first else f"{before} {word}"
            audio = _say(name, text, rng)
            if audio is not None:
                audio = audio * np.float32(10 ** (rng.uniform(-20.0, -2.0) / 20))
                for clip in phrase_windows(audio, word_first, rng):
                    if rng.random() < 0.3:
                        clip = negatives.telephone_back(clip, rng)
                    add(_quiet_noise(clip, rng), index, "neural_phrases")
        for other in rng.choice(others, size=args.unknown, replace=False):
            audio = _say(name, str(other), rng)
            if audio is not None:
                add(synth.augment(audio, rng), UNKNOWN, "neural_unknown")
        for text in rng.choice(texts, size=args.sentences, replace=False):
            audio = _say(name, str(text), rng)
            if audio is not None:
                audio = audio * np.float32(10 ** (rng.uniform(-20.0, -2.0) / 20))
                rows, row_labels = negatives.stream_rows(_quiet_noise(audio, rng))
                for row, label in zip(rows, row_labels, strict=True):
                    add(row, label, "neural_sentences")
        np.savez(
            done,
            windows=np.stack(windows[first:]),
            labels=np.asarray(labels[first:], dtype=np.int64),
            groups=np.asarray(groups[first:]),
        )
        print(f"{name}: {len(labels)} rows, {time.monotonic() - began:.0f} s", flush=True)
    if args.only:
        return
    written = save_embedded_rows(args.cache / "neural.npz", windows, labels, groups)
    print(f"{written} in {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
