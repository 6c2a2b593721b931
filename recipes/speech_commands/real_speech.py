"""Real human speech for the speech-commands model, split by speaker before anything is done.

Sources (Debian packages; nothing is downloaded):
- fillets-ng-data-cs and fillets-ng-data-nl: the acted dialogue of the game Fish Fillets NG
  in Czech and Dutch, wideband Ogg Vorbis, one file per line. The file name says who speaks
  (``<level>-<speaker>-<line>.ogg``): ``m`` is the small fish and ``v`` the big fish, each
  voiced by one actor per language; the subtitles (``script/<level>/dialogs_<lang>.lua``)
  give each line's text. Only the two main characters are used, because the actors of the
  minor characters are not named and may be the same people.
- pocketsphinx-testdata: a few English recordings with transcripts (LibriVox reader, card
  names, digits), 16 kHz.

The split is by actor and is fixed here, before any figure was seen:
- ``train``: the Dutch small fish (nl:m). Its lines may be used as training negatives.
- ``validation``: the Czech big fish (cs:v). Threshold calibration and model selection.
- ``evaluation``: the Dutch big fish (nl:v), the Czech small fish (cs:m) and the English
  pocketsphinx recordings. Used for nothing but the final figures.

Lines whose text holds a command word as a word (Czech ``no`` is one: it means "well") are
kept apart as ``has_command``: they are not speech *without* command words. Files whose
transcript is unknown are left out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile
import soxr

from recipes.speech_commands.synthesize import COMMANDS, SAMPLE_RATE

FloatArray = npt.NDArray[np.float32]

FILLETS = Path("/usr/share/games/fillets-ng")
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")
MAIN_CHARACTERS = ("m", "v")
SPLIT_OF_ACTOR = {
    "fillets-nl:m": "train",
    "fillets-cs:v": "validation",
    "fillets-nl:v": "evaluation",
    "fillets-cs:m": "evaluation",
}
SPLITS = ("train", "validation", "evaluation")
PACKAGES = {
    "fillets-cs": "fillets-ng-data-cs",
    "fillets-nl": "fillets-ng-data-nl",
    "pocketsphinx": "pocketsphinx-testdata",
}
# English pocketsphinx recordings: (path, speaker, transcript). `numbers.raw` and
# `something.raw` are left out (no transcript ships with them).
POCKETSPHINX_FILES = (
    ("goforward.raw", "ps-goforward", "go forward ten meters"),
    ("tidigits/dhd.2934z.raw", "ps-tidigits-dhd", "two nine three four zero"),
)
_DIALOG = re.compile(r'dialogId\("([^"]+)"[^\n]*\)\s*\ndialogStr\("((?:[^"\\]|\\.)*)"\)')


@dataclass(frozen=True, slots=True)
class Line:
    """One recorded line: where it is, who says it, what they say."""

    source: str  # fillets-cs | fillets-nl | pocketsphinx
    speaker: str  # e.g. fillets-nl:m
    path: Path
    text: str
    raw_rate: int = 0  # > 0: headerless s16le at this rate

    @property
    def commands(self) -> tuple[str, ...]:
        return command_words(self.text)

    @property
    def split(self) -> str:
        return SPLIT_OF_ACTOR.get(self.speaker, "evaluation")

    @property
    def key(self) -> str:
        return f"{self.speaker}/{self.path.name}"


def command_words(text: str) -> tuple[str, ...]:
    """The command words the text holds as whole words (case-insensitive)."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    return tuple(w for w in words if w in COMMANDS)


def require(sources: Sequence[str]) -> None:
    """Fail with the apt command when a source package is missing."""
    missing = []
    for source in sources:
        if source.startswith("fillets-"):
            lang = source.split("-", 1)[1]
            if not any(FILLETS.glob(f"sound/*/{lang}/*.ogg")):
                missing.append(PACKAGES[source])
        elif not (POCKETSPHINX / "librivox" / "transcription").is_file():
            missing.append(PACKAGES[source])
    if missing:
        raise RuntimeError(f"missing real speech: apt-get install {' '.join(missing)}")


def _subtitles(level: Path, lang: str) -> dict[str, str]:
    path = level / f"dialogs_{lang}.lua"
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8", errors="replace")
    return {m.group(1): m.group(2).replace('\\"', '"') for m in _DIALOG.finditer(text)}


def fillets_lines(lang: str) -> Iterator[Line]:
    """The main characters' lines in one language, with their subtitles."""
    for folder in sorted(FILLETS.glob(f"sound/*/{lang}")):
        level = folder.parent.name
        texts = _subtitles(FILLETS / "script" / level, lang)
        for path in sorted(folder.glob("*.ogg")):
            parts = path.stem.split("-")
            if len(parts) < 3 or parts[1] not in MAIN_CHARACTERS:
                continue
            text = texts.get(path.stem)
            if text is None:
                continue
            yield Line(f"fillets-{lang}", f"fillets-{lang}:{parts[1]}", path, text)


def pocketsphinx_lines() -> Iterator[Line]:
    root = POCKETSPHINX
    for raw in (root / "librivox" / "transcription").read_text().splitlines():
        m = re.match(r"<s>(.*)</s>\s*\((\S+)\)", raw.strip())
        if m:
            path = root / "librivox" / f"{m.group(2)}.wav"
            yield Line("pocketsphinx", "ps-librivox", path, m.group(1).strip())
    for raw in (root / "cards" / "cards.transcription").read_text().splitlines():
        m = re.match(r"<s>(.*)</s>\s*\((\S+)\)", raw.strip())
        if m:
            path = root / "cards" / f"{m.group(2)}.wav"
            yield Line("pocketsphinx", "ps-cards", path, m.group(1).strip())
    for name, speaker, text in POCKETSPHINX_FILES:
        yield Line("pocketsphinx", speaker, root / name, text, raw_rate=16_000)


def all_lines(sources: Sequence[str] = ("fillets-cs", "fillets-nl", "pocketsphinx")) -> list[Line]:
    require(sources)
    lines: list[Line] = []
    for source in sources:
        if source == "pocketsphinx":
            lines += pocketsphinx_lines()
        else:
            lines += fillets_lines(source.split("-", 1)[1])
    return lines


def sample(lines: Sequence[Line], per_speaker: int, seed: int = 17) -> list[Line]:
    """At most ``per_speaker`` lines of each speaker, chosen by a hash of the file name (stable
    whatever else is installed)."""
    chosen: list[Line] = []
    for speaker in sorted({x.speaker for x in lines}):
        mine = [x for x in lines if x.speaker == speaker]
        mine.sort(key=lambda x: hashlib.sha1(f"{seed}:{x.key}".encode()).hexdigest())
        chosen += mine[:per_speaker]
    return chosen


def load(line: Line) -> FloatArray:
    """Mono float32 at 16 kHz in [-1, 1]."""
    if line.raw_rate:
        pcm = np.fromfile(line.path, dtype="<i2").astype(np.float32) / 32768.0
        rate = line.raw_rate
    else:
        data, rate = soundfile.read(str(line.path), dtype="float32", always_2d=True)
        pcm = data.mean(axis=1).astype(np.float32)
    if rate != SAMPLE_RATE:
        pcm = soxr.resample(pcm, rate, SAMPLE_RATE).astype(np.float32)
    return np.ascontiguousarray(pcm, dtype=np.float32)


# ---------------------------------------------------------------- the telephone channel


def mu_law(x: FloatArray, mu: float = 255.0) -> FloatArray:
    """G.711-style mu-law companding and expansion with 8-bit codes (quantisation included)."""
    y = np.sign(x) * np.log1p(mu * np.minimum(np.abs(x), 1.0)) / np.log1p(mu)
    q = np.round((y + 1.0) * 127.5) / 127.5 - 1.0
    out: FloatArray = (np.sign(q) * np.expm1(np.abs(q) * np.log1p(mu)) / mu).astype(np.float32)
    return out


def a_law(x: FloatArray, a: float = 87.6) -> FloatArray:
    """G.711-style A-law companding and expansion with 8-bit codes."""
    ax = np.minimum(np.abs(x), 1.0)
    small = ax < 1.0 / a
    y = np.where(
        small, a * ax / (1 + np.log(a)), (1 + np.log(np.maximum(a * ax, 1e-12))) / (1 + np.log(a))
    )
    q = np.round(y * 127.0) / 127.0
    inv = np.where(
        q < 1.0 / (1 + np.log(a)), q * (1 + np.log(a)) / a, np.exp(q * (1 + np.log(a)) - 1) / a
    )
    out: FloatArray = (np.sign(x) * inv).astype(np.float32)
    return out


def telephone(x: FloatArray, rate: int = SAMPLE_RATE, companding: str = "mulaw") -> FloatArray:
    """What a phone line delivers: resampled to 8 kHz (soxr's anti-alias filter band-limits it
    to under 4 kHz) and companded; returned AT 8 kHz, as a caller would send it."""
    narrow: FloatArray = soxr.resample(x, rate, 8_000).astype(np.float32)
    narrow = np.clip(narrow, -1.0, 1.0)
    if companding == "mulaw":
        narrow = mu_law(narrow)
    elif companding == "alaw":
        narrow = a_law(narrow)
    return narrow


def to_s16(x: FloatArray) -> bytes:
    return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
