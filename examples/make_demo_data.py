"""Make the small data sets the README's walk-through trains and evaluates on.

    python examples/make_demo_data.py demo

writes
    demo/speakers/train/<speaker>/...   two real people (Debian's pocketsphinx-testdata: a
    demo/speakers/held/<speaker>/...    LibriVox reader, the "cards" speaker) and three
                                        synthetic voices; held/unknown/ is a voice nobody
                                        enrolled
    demo/words/train/<word>/...         three words said by eight espeak-ng voices
    demo/words/held/<word>/...          the same words by a ninth voice

Needs espeak-ng, flite and pocketsphinx-testdata (apt-get install espeak-ng flite
pocketsphinx-testdata).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

TESTDATA = Path("/usr/share/pocketsphinx/test/data")

SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us.",
)
ENROLLED_VOICES = {"espeak-m3": "en+m3", "espeak-f2": "en+f2", "flite-slt": "flite:slt"}
HELD_OUT_VOICE = "flite:kal16"
HUMANS = {
    "reader": [
        f"librivox/sense_and_sensibility_01_austen_64kb-{n}.wav"
        for n in ("0870", "0880", "0890", "0920", "0930")
    ],
    "cards": [f"cards/00{n}.wav" for n in range(1, 6)],
}


def synthesize(voice: str, text: str, path: Path) -> None:
    if voice.startswith("flite:"):
        cmd = ["flite", "-voice", voice.split(":", 1)[1], "-t", text, "-o", str(path)]
    else:
        cmd = ["espeak-ng", "-v", voice, "-w", str(path), text]
    if shutil.which(cmd[0]) is None:
        raise SystemExit(f"{cmd[0]} is missing: apt-get install espeak-ng flite")
    subprocess.run(cmd, check=True, capture_output=True)


def pieces(path: Path, longest_s: float = 2.0) -> list[npt.NDArray[np.float32]]:
    x, rate = sf.read(path, dtype="float32")
    n = max(1, int(np.ceil(len(x) / (longest_s * rate))))
    step = len(x) // n
    return [x[i * step : (i + 1) * step] for i in range(n)]


def build_data(root: Path) -> tuple[Path, Path]:
    """(training audiofolder, held-out audiofolder with an `unknown` voice)."""
    train, held = root / "train", root / "held"
    for label, voice in ENROLLED_VOICES.items():
        for i, text in enumerate(SENTENCES):
            # Native rates (22.05 / 16 kHz) on purpose: training and the gateway resample.
            folder = (held if i >= 6 else train) / label
            folder.mkdir(parents=True, exist_ok=True)
            synthesize(voice, text, folder / f"{i}.wav")
    for i, text in enumerate(SENTENCES[:4]):
        (held / "unknown").mkdir(parents=True, exist_ok=True)
        synthesize(HELD_OUT_VOICE, text, held / "unknown" / f"{i}.wav")
    for label, names in HUMANS.items():
        clips = [c for name in names for c in pieces(TESTDATA / name)]
        keep = 2 if label == "reader" else 1
        for i, clip in enumerate(clips):
            folder = (held if i >= len(clips) - keep else train) / label
            folder.mkdir(parents=True, exist_ok=True)
            # FLAC at 16 kHz: another container the loader must read.
            sf.write(folder / f"{i}.flac", clip, 16000)
    return train, held


WORDS = ("apple", "banana", "cherry")
WORD_VOICES = ("en+m3", "en+f2", "en-us+m1", "en+f4", "en-gb+Andy", "en+klatt", "en+m7", "en+f5")
WORD_HELD_OUT_VOICE = "en-us+f3"


def build_words(root: Path) -> tuple[Path, Path]:
    """(training audiofolder, held-out audiofolder) of WORDS."""
    train, held = root / "train", root / "held"
    for word in WORDS:
        (train / word).mkdir(parents=True, exist_ok=True)
        (held / word).mkdir(parents=True, exist_ok=True)
        for voice in WORD_VOICES:
            synthesize(voice, word, train / word / f"{voice.replace('+', '_')}.wav")
        synthesize(WORD_HELD_OUT_VOICE, word, held / word / "held.wav")
    return train, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("root", type=Path)
    args = parser.parse_args()
    missing = [n for n in ("cards/001.wav",) if not (TESTDATA / n).is_file()]
    if missing:
        raise SystemExit("pocketsphinx-testdata is missing: apt-get install pocketsphinx-testdata")
    build_data(args.root / "speakers")
    build_words(args.root / "words")
    print(f"wrote {args.root}/speakers/{{train,held}} and {args.root}/words/{{train,held}}")


if __name__ == "__main__":
    main()
