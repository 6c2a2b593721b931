"""Training rows that look like real use: speech without command words, and a phone channel.

Every row is a 1 s window embedded by the ported backbone ([6, 96], as train.py embeds):
- ``sentences``: continuous speech synthesized from text no split of real_speech.py speaks
  (the subtitles of fish-fillets' minor characters, whose recordings are used nowhere), in
  English by the training voices of synthesize.py and by espeak-ng's voices of other
  languages reading the English, and in Czech and Dutch by espeak-ng's cs and nl voices;
  windows every 0.5 s, cutting through words; label ``unknown`` (``silence`` when the
  window is quiet).
- ``confusable``: words that sound like commands (town, brown, write, ...), one per clip,
  training voices, label ``unknown``.
- ``real``: the TRAINING actor's lines (real_speech.py, split ``train``) without command
  words, windows every 0.5 s, wideband and through the telephone channel.
- ``channel``: training clips of synthesize.py (all labels) through an 8 kHz mu-law or
  A-law line and back, or clipped, or with babble made of the training actor's speech
  10-20 dB below; labels kept.
The held-out and recall voices (flite rms and awb, espeak-ng en-029 and the held-out
variants) are never used here.

Writes .cache/speech_commands/negatives.npz (embeddings, labels, group of each row).

Usage: python -m recipes.speech_commands.negatives [--cache .cache/speech_commands]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import soxr
import torch

from recipes.speech_commands import real_speech
from recipes.speech_commands import synthesize as synth
from recipes.speech_commands.detection import stream_windows
from recipes.speech_commands.synthesize import LABELS, SAMPLE_RATE, FloatArray
from recipes.speech_commands.train import save_embedded_rows

CONFUSABLE = (
    "town", "brown", "write", "light", "know", "toe", "gone", "lift", "stock", "yet", "of",
    "dawn", "noon", "note", "goal", "lap", "cup", "dog", "often", "bright", "left-handed",
)  # fmt: skip
FOREIGN_VOICES = ("de", "fr-fr", "es", "it", "nl", "pl", "ru", "pt-br", "sv", "hi", "cs", "da")
_DIALOG = re.compile(r'dialogId\("([^"]+)",\s*"[^"]*",\s*"((?:[^"\\]|\\.)*)"\)')
_LOCAL = re.compile(r'dialogId\("([^"]+)"[^\n]*\)\s*\ndialogStr\("((?:[^"\\]|\\.)*)"\)')
UNKNOWN = LABELS.index("unknown")
SILENCE = LABELS.index("silence")


def minor_texts() -> dict[str, list[str]]:
    """Subtitles of the minor characters (never a split of real_speech.py), without command
    words: {"en": [...], "cs": [...], "nl": [...]}."""
    out: dict[str, list[str]] = {"en": [], "cs": [], "nl": []}
    for level in sorted((real_speech.FILLETS / "script").iterdir()):
        for lang in ("cs", "nl"):
            path = level / f"dialogs_{lang}.lua"
            if not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for m in _LOCAL.finditer(text):
                parts = m.group(1).split("-")
                if len(parts) >= 3 and parts[1] in real_speech.MAIN_CHARACTERS:
                    continue
                if not real_speech.command_words(m.group(2)):
                    out[lang].append(m.group(2))
            if lang == "cs":
                for m in _DIALOG.finditer(text):
                    parts = m.group(1).split("-")
                    if len(parts) >= 3 and parts[1] in real_speech.MAIN_CHARACTERS:
                        continue
                    if m.group(2) and not real_speech.command_words(m.group(2)):
                        out["en"].append(m.group(2))
    return {k: sorted(set(v)) for k, v in out.items()}


def _speak(voice: synth.Voice, text: str, work: Path, tag: str) -> FloatArray | None:
    clean = re.sub(r"[^\w\s,.?!'-]", " ", text).strip()
    if not clean:
        return None
    try:
        return synth.synthesize(voice, clean, work, tag)
    except Exception:  # a voice that cannot say the text is skipped
        return None


def label_window(window: FloatArray) -> int:
    """``silence`` when no 10 ms frame of the window reaches -45 dBFS, else ``unknown``."""
    frames = window[: window.size // 160 * 160].reshape(-1, 160)
    loudest = float(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)).max())
    return SILENCE if loudest < 10 ** (-45 / 20) else UNKNOWN


def stream_rows(audio: FloatArray, hop: int = 8_000) -> tuple[FloatArray, list[int]]:
    windows = stream_windows(audio, 16_000, hop)
    return windows, [label_window(w) for w in windows]


def telephone_back(x: FloatArray, rng: np.random.Generator) -> FloatArray:
    narrow = real_speech.telephone(x, companding=str(rng.choice(["mulaw", "alaw", "none"])))
    out: FloatArray = soxr.resample(narrow, 8_000, SAMPLE_RATE).astype(np.float32)[: x.size]
    if out.size < x.size:
        out = np.pad(out, (0, x.size - out.size))
    return out


def channel(clip: FloatArray, rng: np.random.Generator, babble: FloatArray) -> FloatArray:
    """One of: phone line, clipping, babble of real speech 10-20 dB down (then maybe a line)."""
    kind = rng.random()
    if kind < 0.45:
        return telephone_back(clip, rng)
    if kind < 0.6:
        peak = float(np.abs(clip).max()) + 1e-9
        gain = rng.uniform(2.0, 8.0) / peak
        return np.clip(clip * gain, -1.0, 1.0).astype(np.float32) * np.float32(0.5)
    start = int(rng.integers(0, babble.size - clip.size))
    other = babble[start : start + clip.size]
    rms = float(np.sqrt(np.mean(clip**2))) + 1e-9
    other_rms = float(np.sqrt(np.mean(other**2))) + 1e-9
    mixed = clip + other * (rms / other_rms) * 10 ** (-rng.uniform(10.0, 20.0) / 20)
    if rng.random() < 0.5:
        mixed = telephone_back(mixed.astype(np.float32), rng)
    return np.clip(mixed, -1.0, 1.0).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", type=Path, default=Path(".cache/speech_commands"))
    parser.add_argument("--sentences", type=int, default=240)
    parser.add_argument("--real-lines", type=int, default=250)
    parser.add_argument("--channel-clips", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=99)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    train_pools, _ = synth.voice_pools(synth.espeak_variants())
    windows: list[FloatArray] = []
    labels: list[int] = []
    groups: list[str] = []
    began = time.monotonic()

    texts = minor_texts()
    with tempfile.TemporaryDirectory(prefix="negatives_") as tmp:
        work = Path(tmp)
        for i in range(args.sentences):
            lang = str(rng.choice(["en", "en", "en", "cs", "nl"]))
            text = str(rng.choice(texts[lang]))
            if lang != "en":
                voice = synth.Voice("espeak", lang, rng.uniform(0.8, 1.3), rng.uniform(20, 80))
            elif rng.random() < 0.25:
                name = str(rng.choice(FOREIGN_VOICES))
                voice = synth.Voice("espeak", name, rng.uniform(0.8, 1.3), rng.uniform(20, 80))
            else:
                engine = str(rng.choice(["espeak", "espeak", "flite"]))
                voice = synth.random_voice(rng, engine, train_pools[engine])
            audio = _speak(voice, text, work, f"s{i}")
            if audio is None:
                continue
            audio = audio * np.float32(10 ** (rng.uniform(-20.0, -2.0) / 20))
            pad = np.zeros(int(rng.uniform(0.1, 0.5) * SAMPLE_RATE), dtype=np.float32)
            audio = np.concatenate([pad, audio, pad])
            if rng.random() < 0.3:
                audio = telephone_back(audio, rng)
            w, lab = stream_rows(audio)
            windows += list(w)
            labels += lab
            groups += ["sentences"] * len(lab)
        print(f"sentences: {len(labels)} windows, {time.monotonic() - began:.0f} s", flush=True)

        jobs = []
        for word in CONFUSABLE:
            for _ in range(12):
                engine = str(rng.choice(["espeak", "espeak", "flite"]))
                jobs.append((synth.random_voice(rng, engine, train_pools[engine]), word))
        said = synth.synthesize_many([(v, w.replace("-", " ")) for v, w in jobs], threads=1)
        for audio in said:
            windows.append(synth.augment(audio, rng))
            labels.append(UNKNOWN)
            groups.append("confusable")
        print(f"+ confusable: {len(labels)} windows", flush=True)

    lines = [
        x for x in real_speech.all_lines(("fillets-nl",)) if x.split == "train" and not x.commands
    ]
    babble_parts: list[FloatArray] = []
    for line in real_speech.sample(lines, args.real_lines):
        audio = real_speech.load(line)
        babble_parts.append(audio)
        if rng.random() < 0.5:
            audio = telephone_back(audio, rng)
        w, lab = stream_rows(audio)
        windows += list(w)
        labels += lab
        groups += ["real"] * len(lab)
    print(f"+ real: {len(labels)} windows", flush=True)

    babble = np.concatenate(babble_parts)
    with np.load(args.cache / "clips_train.npz") as f:
        pcm, clip_labels = f["pcm"], f["labels"]
    pick = rng.choice(pcm.shape[0], size=min(args.channel_clips, pcm.shape[0]), replace=False)
    for i in pick:
        windows.append(channel(pcm[i].astype(np.float32) / 32768.0, rng, babble))
        labels.append(int(clip_labels[i]))
        groups.append("channel")
    print(f"+ channel: {len(labels)} windows; embedding", flush=True)

    written = save_embedded_rows(args.cache / "negatives.npz", windows, labels, groups)
    print(f"{written} in {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
