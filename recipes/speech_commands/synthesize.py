"""Synthesize the speech-commands dataset with offline synthesizers (no download).

Voices: espeak-ng (English accents x voice variants, random speed and pitch), flite (kal,
kal16, awb, rms, slt; random duration stretch and F0) and Festival (kal_diphone,
cmu_us_slt_arctic_hts; random duration stretch). Every utterance is resampled to 16 kHz,
trimmed, perturbed in speed (resampling), placed at a random offset in a 1 s clip and
augmented (gain, reverberation from a synthetic impulse response, noise). `silence` clips are
noise, hum or digital silence; `unknown` clips are other words.

Whole voices are held out for evaluation: flite `rms` and `awb` (speakers never seen in
training), every espeak-ng variant in HELD_OUT_VARIANTS and every voice of the `en-029`
accent. Training and validation use the rest.

A third split, `extra` (EXTRA_PLAN), holds more clips from the training voices with wider
prosody, a wider resampling warp (tempo, pitch and formants together, like a vocal-tract
length change) and, in 40 % of its clips, the word shifted so that up to 30 % of it falls
off an edge of the second; train.py trains on it together with `train`.

The clips are cached as int16 arrays in .cache/speech_commands/clips_{train,eval,extra}.npz.

Usage: python -m recipes.speech_commands.synthesize [--cache .cache/speech_commands]
       [--splits train eval extra]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile

FloatArray = npt.NDArray[np.float32]

SAMPLE_RATE = 16_000
CLIP_SAMPLES = 16_000
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
LABELS = (*COMMANDS, "unknown", "silence")
UNKNOWN_INDEX = LABELS.index("unknown")
SILENCE_INDEX = LABELS.index("silence")
# The other words of Google's Speech Commands set (none a homophone of a command).
UNKNOWN_WORDS = (
    "bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin", "nine",
    "one", "seven", "sheila", "six", "three", "tree", "two", "wow", "zero", "backward",
    "forward", "follow", "learn", "visual",
)  # fmt: skip

ESPEAK_ACCENTS = (
    "en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
)  # fmt: skip
HELD_OUT_ACCENTS = ("en-029",)
HELD_OUT_VARIANTS = (
    "f4", "m7", "klatt3", "Annie", "belinda", "edward", "iven3", "max", "steph2", "Andy",
)  # fmt: skip
FLITE_TRAIN = ("kal", "kal16", "slt")
FLITE_HELD_OUT = ("rms", "awb")
FESTIVAL_VOICES = ("kal_diphone", "cmu_us_slt_arctic_hts")
FEMALE_FLITE = ("slt",)
SPLITS = ("train", "eval", "extra")
REQUIRED_TOOLS = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "festival"}


@dataclass(frozen=True, slots=True)
class Voice:
    """One synthesizer setting: engine, voice name and prosody."""

    engine: str  # espeak | flite | festival
    name: str
    speed: float = 1.0  # espeak words per minute / 175; flite and festival 1 / duration stretch
    pitch: float = 50.0  # espeak -p (0..99); flite mean F0 in Hz

    @property
    def family(self) -> str:
        return f"{self.engine}:{self.name.split('+')[0] if self.engine != 'espeak' else self.name}"


def require_tools(tools: Sequence[str] = ("espeak-ng", "flite", "festival")) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise RuntimeError(
            f"missing synthesizer(s) {missing}: apt-get install espeak-ng flite festival "
            "festvox-kallpc16k festvox-us-slt-hts"
        )


def espeak_variants() -> list[str]:
    """espeak-ng's voice variants (the !v folder), without names holding spaces."""
    out = subprocess.run(
        ["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True
    ).stdout
    names: list[str] = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) == 5 and parts[4].startswith("!v/"):
            name = parts[4].split("!v/", 1)[1]
            if " " not in name and name not in names:
                names.append(name)
    return sorted(names)


def resample(x: FloatArray, rate: int, target: int = SAMPLE_RATE) -> FloatArray:
    """Band-limited resampling by truncating or zero-padding the real spectrum."""
    if rate == target or x.size == 0:
        return x.astype(np.float32)
    n_out = max(1, round(x.size * target / rate))
    spectrum = np.fft.rfft(x.astype(np.float64))
    bins = n_out // 2 + 1
    if spectrum.size >= bins:
        spectrum = spectrum[:bins]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(bins - spectrum.size, spectrum.dtype)])
    y = np.fft.irfft(spectrum, n=n_out) * (n_out / x.size)
    return y.astype(np.float32)


def trim(x: FloatArray, floor_db: float = 40.0) -> FloatArray:
    """Drop leading and trailing frames quieter than the loudest frame minus floor_db."""
    frame = 160
    n = x.size // frame
    if n == 0:
        return x
    energy = (x[: n * frame].reshape(n, frame).astype(np.float64) ** 2).mean(axis=1) + 1e-12
    db = 10 * np.log10(energy)
    keep = np.nonzero(db > db.max() - floor_db)[0]
    start = max(0, (int(keep[0]) - 2) * frame)
    end = min(x.size, (int(keep[-1]) + 3) * frame)
    return x[start:end]


def _read(path: Path) -> FloatArray:
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono: FloatArray = data.mean(axis=1).astype(np.float32)
    return resample(mono, int(rate))


def _finish(path: Path, voice: Voice, word: str) -> FloatArray:
    audio = trim(_read(path))
    path.unlink()
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak <= 0:
        raise RuntimeError(f"{voice} said nothing for {word!r}")
    return (audio / peak).astype(np.float32)


def synthesize(voice: Voice, word: str, workdir: Path, tag: str = "0") -> FloatArray:
    """One word, spoken by one voice: trimmed float32 at 16 kHz, peak-normalised."""
    out = workdir / f"{tag}.wav"
    if voice.engine == "espeak":
        cmd = [
            "espeak-ng", "-v", voice.name, "-s", str(round(175 * voice.speed)),
            "-p", str(round(voice.pitch)), "-w", str(out), word,
        ]  # fmt: skip
    elif voice.engine == "flite":
        cmd = [
            "flite", "-voice", voice.name, "-t", word, "-o", str(out),
            "--setf", f"duration_stretch={1.0 / voice.speed:.3f}",
            "--setf", f"int_f0_target_mean={voice.pitch:.1f}",
        ]  # fmt: skip
    elif voice.engine == "festival":
        return _festival_batch([(voice, word)], workdir, tag)[0]
    else:
        raise ValueError(f"unknown engine {voice.engine}")
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return _finish(out, voice, word)


def _festival_batch(jobs: Sequence[tuple[Voice, str]], workdir: Path, tag: str) -> list[FloatArray]:
    """Several words in ONE festival process (loading a voice takes most of its time)."""
    lines: list[str] = []
    paths: list[Path] = []
    current = ""
    for i, (voice, word) in enumerate(jobs):
        if not word.isalpha():
            raise ValueError(f"not a plain word: {word!r}")
        if voice.name != current:
            lines.append(f"(voice_{voice.name})")
            current = voice.name
        path = workdir / f"{tag}_{i}.wav"
        paths.append(path)
        lines.append(f"(Parameter.set 'Duration_Stretch {1.0 / voice.speed:.3f})")
        lines.append(f'(utt.save.wave (SynthText "{word}") "{path}" \'riff)')
    script = workdir / f"{tag}.scm"
    script.write_text("\n".join(lines) + "\n")
    subprocess.run(["festival", "-b", str(script)], check=True, capture_output=True, timeout=600)
    script.unlink()
    return [_finish(p, v, w) for p, (v, w) in zip(paths, jobs, strict=True)]


def synthesize_many(jobs: Sequence[tuple[Voice, str]], threads: int = 2) -> list[FloatArray]:
    """All jobs, in order; festival jobs go in batches of 50 per process."""
    results: list[FloatArray | None] = [None] * len(jobs)
    singles = [i for i, (v, _) in enumerate(jobs) if v.engine != "festival"]
    festival = sorted(
        (i for i, (v, _) in enumerate(jobs) if v.engine == "festival"),
        key=lambda i: (jobs[i][0].name, i),
    )
    batches = [festival[k : k + 50] for k in range(0, len(festival), 50)]
    with tempfile.TemporaryDirectory(prefix="speech_commands_") as tmp:
        work = Path(tmp)

        def one(i: int) -> None:
            results[i] = synthesize(jobs[i][0], jobs[i][1], work, str(i))

        def batch(indices: list[int]) -> None:
            outs = _festival_batch([jobs[i] for i in indices], work, f"b{indices[0]}")
            for i, audio in zip(indices, outs, strict=True):
                results[i] = audio

        with ThreadPoolExecutor(max_workers=threads) as pool:
            waits = [pool.submit(batch, b) for b in batches]
            waits += [pool.submit(one, i) for i in singles]
            for w in waits:
                w.result()
    done: list[FloatArray] = []
    for r in results:
        if r is None:
            raise RuntimeError("a synthesis job produced nothing")
        done.append(r)
    return done


# ---------------------------------------------------------------- augmentation


def colored_noise(rng: np.random.Generator, n: int, exponent: float) -> FloatArray:
    """Noise with power spectrum ~ 1 / f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    spectrum = spectrum / freqs ** (exponent / 2)
    x = np.fft.irfft(spectrum, n=n)
    out: FloatArray = (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)
    return out


def room_impulse(rng: np.random.Generator) -> FloatArray:
    """A synthetic impulse response: direct path plus exponentially decaying noise."""
    rt60 = rng.uniform(0.1, 0.5)
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.002 * SAMPLE_RATE)] = 0.0
    ir = tail * rng.uniform(0.1, 0.5) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    ir[0] = 1.0
    out: FloatArray = ir.astype(np.float32)
    return out


def convolve(x: FloatArray, ir: FloatArray) -> FloatArray:
    n = x.size + ir.size - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: x.size]
    return y.astype(np.float32)


def place(word: FloatArray, rng: np.random.Generator | None, center: bool = False) -> FloatArray:
    """The word in a 1 s clip: at a random offset (whole word inside when it fits)."""
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    if word.size >= CLIP_SAMPLES:
        start = (word.size - CLIP_SAMPLES) // 2
        clip[:] = word[start : start + CLIP_SAMPLES]
        return clip
    room = CLIP_SAMPLES - word.size
    offset = room // 2 if center or rng is None else int(rng.integers(0, room + 1))
    clip[offset : offset + word.size] = word
    return clip


def place_cut(word: FloatArray, rng: np.random.Generator, max_cut: float) -> FloatArray:
    """The word in a 1 s clip, shifted so that up to ``max_cut`` of it falls off one edge."""
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    cut = int(word.size * rng.uniform(0.0, max_cut))
    if rng.random() < 0.5:  # cut at the start: the clip opens mid-word
        part = word[cut:][:CLIP_SAMPLES]
        clip[: part.size] = part
    else:  # cut at the end
        part = word[: word.size - cut][-CLIP_SAMPLES:]
        clip[CLIP_SAMPLES - part.size :] = part
    return clip


@dataclass(frozen=True, slots=True)
class Augment:
    """Augmentation ranges: speed (resampling: tempo, pitch and formants together, like a
    vocal-tract-length change) and how often / how much a word is cut at a clip edge."""

    speed: tuple[float, float] = (0.88, 1.12)
    edge_prob: float = 0.0
    max_cut: float = 0.0


PLAIN = Augment()
# Extra split: wider vocal-tract-like warping and words shifted partly out of the clip.
WIDE = Augment(speed=(0.8, 1.25), edge_prob=0.4, max_cut=0.3)


def augment(word: FloatArray, rng: np.random.Generator, how: Augment = PLAIN) -> FloatArray:
    """Speed, placement, reverberation, gain and noise for one utterance."""
    speed = rng.uniform(*how.speed)
    x = resample(word, round(SAMPLE_RATE * speed))
    if x.size > 0.95 * CLIP_SAMPLES:  # long words: squeeze them into the clip
        x = resample(x, x.size, int(0.9 * CLIP_SAMPLES))
    if how.edge_prob > 0 and rng.random() < how.edge_prob:
        clip = place_cut(x, rng, how.max_cut)
    else:
        clip = place(x, rng)
    if rng.random() < 0.35:
        clip = convolve(clip, room_impulse(rng))
    peak = float(np.abs(clip).max()) + 1e-9
    clip = clip / peak * 10 ** (rng.uniform(-30.0, -1.0) / 20)
    if rng.random() < 0.85:
        speech_rms = float(np.sqrt(np.mean(clip[np.abs(clip) > 0] ** 2))) if clip.any() else 0.0
        snr = rng.uniform(8.0, 40.0)
        noise = colored_noise(rng, CLIP_SAMPLES, rng.choice([0.0, 1.0, 2.0]))
        clip = clip + noise * speech_rms * 10 ** (-snr / 20)
    return np.clip(clip, -1.0, 1.0).astype(np.float32)


def silence_clip(rng: np.random.Generator) -> FloatArray:
    """Background without speech: noise of some colour and level, hum, or digital silence."""
    kind = rng.random()
    if kind < 0.08:
        return np.zeros(CLIP_SAMPLES, dtype=np.float32)
    level = 10 ** (rng.uniform(-75.0, -20.0) / 20)
    clip = colored_noise(rng, CLIP_SAMPLES, float(rng.uniform(0.0, 2.0))) * level
    if kind > 0.8:
        t = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
        hum = float(rng.choice([50.0, 60.0]))
        clip += (level * rng.uniform(0.5, 3.0) * np.sin(2 * np.pi * hum * t)).astype(np.float32)
    return np.clip(clip, -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- voices and dataset


def random_voice(
    rng: np.random.Generator, engine: str, names: Sequence[str], wide: bool = False
) -> Voice:
    """A voice with random prosody; ``wide`` widens the speed and pitch ranges."""
    name = str(rng.choice(list(names)))
    if engine == "espeak":
        if wide:
            return Voice("espeak", name, speed=rng.uniform(0.6, 1.5), pitch=rng.uniform(0, 99))
        return Voice("espeak", name, speed=rng.uniform(0.7, 1.3), pitch=rng.uniform(15, 85))
    if engine == "flite":
        if wide:
            f0 = rng.uniform(130, 280) if name in FEMALE_FLITE else rng.uniform(65, 190)
            return Voice("flite", name, speed=rng.uniform(0.65, 1.45), pitch=f0)
        f0 = rng.uniform(150, 230) if name in FEMALE_FLITE else rng.uniform(80, 140)
        return Voice("flite", name, speed=rng.uniform(0.75, 1.3), pitch=f0)
    return Voice("festival", name, speed=rng.uniform(0.7, 1.4) if wide else rng.uniform(0.8, 1.25))


def voice_pools(variants: Sequence[str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Training and held-out voice names per engine."""
    held_variants = set(HELD_OUT_VARIANTS)
    train_espeak = [
        f"{a}+{v}"
        for a in ESPEAK_ACCENTS
        if a not in HELD_OUT_ACCENTS
        for v in variants
        if v not in held_variants
    ]
    eval_espeak = [
        f"{a}+{v}"
        for a in ESPEAK_ACCENTS
        for v in variants
        if a in HELD_OUT_ACCENTS or v in held_variants
    ]
    train = {"espeak": train_espeak, "flite": list(FLITE_TRAIN), "festival": list(FESTIVAL_VOICES)}
    held = {"espeak": eval_espeak, "flite": list(FLITE_HELD_OUT)}
    return train, held


@dataclass(frozen=True, slots=True)
class Plan:
    """How many utterances per word and engine."""

    per_word: dict[str, int]
    unknown_factor: float
    silence: int
    augment_copies: int
    wide: bool = False  # wider prosody (random_voice) and the WIDE augmentation


TRAIN_PLAN = Plan({"espeak": 80, "flite": 50, "festival": 25}, 1.5, 400, 2)
EVAL_PLAN = Plan({"espeak": 40, "flite": 30}, 1.0, 80, 1)
# Extra training clips (training voices only): new utterances with wider prosody and warping,
# some words cut at an edge. Trained on together with the train split.
EXTRA_PLAN = Plan({"espeak": 40, "flite": 20, "festival": 10}, 1.5, 60, 1, wide=True)


def build_split(
    plan: Plan, pools: dict[str, list[str]], seed: int
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int64], list[str]]:
    """int16 clips [N, 16000], label indices [N] and each clip's voice family."""
    rng = np.random.default_rng(seed)
    jobs: list[tuple[Voice, str]] = []
    labels: list[int] = []
    for engine, count in plan.per_word.items():
        for index, word in enumerate(COMMANDS):
            for _ in range(count):
                jobs.append((random_voice(rng, engine, pools[engine], plan.wide), word))
                labels.append(index)
        for _ in range(round(count * plan.unknown_factor)):
            word = str(rng.choice(list(UNKNOWN_WORDS)))
            jobs.append((random_voice(rng, engine, pools[engine], plan.wide), word))
            labels.append(UNKNOWN_INDEX)
    words = synthesize_many(jobs)
    clips: list[FloatArray] = []
    out_labels: list[int] = []
    families: list[str] = []
    for (voice, _), label, audio in zip(jobs, labels, words, strict=True):
        for _ in range(plan.augment_copies):
            clips.append(augment(audio, rng, WIDE if plan.wide else PLAIN))
            out_labels.append(label)
            families.append(voice.family)
    for _ in range(plan.silence):
        clips.append(silence_clip(rng))
        out_labels.append(SILENCE_INDEX)
        families.append("silence")
    pcm = np.round(np.stack(clips) * 32767.0).astype(np.int16)
    return pcm, np.asarray(out_labels, dtype=np.int64), families


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", type=Path, default=Path(".cache/speech_commands"))
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--scale", type=float, default=3.0, help="multiply utterance counts")
    parser.add_argument(
        "--splits", nargs="+", default=["train", "eval", "extra"], choices=SPLITS, help="which"
    )
    args = parser.parse_args()
    require_tools()
    args.cache.mkdir(parents=True, exist_ok=True)
    train_pools, eval_pools = voice_pools(espeak_variants())
    for split, plan, pools, seed in (
        ("train", TRAIN_PLAN, train_pools, args.seed),
        ("eval", EVAL_PLAN, eval_pools, args.seed + 1),
        ("extra", EXTRA_PLAN, train_pools, args.seed + 2),
    ):
        if split not in args.splits:
            continue
        scaled = Plan(
            {k: max(1, round(v * args.scale)) for k, v in plan.per_word.items()},
            plan.unknown_factor,
            max(1, round(plan.silence * args.scale)),
            plan.augment_copies,
            plan.wide,
        )
        began = time.monotonic()
        pcm, labels, families = build_split(scaled, pools, seed)
        np.savez_compressed(
            args.cache / f"clips_{split}.npz",
            pcm=pcm,
            labels=labels,
            families=np.asarray(families),
        )
        counts = np.bincount(labels, minlength=len(LABELS)).tolist()
        print(
            f"{split}: {len(labels)} clips in {time.monotonic() - began:.0f} s, per label {counts}"
        )


if __name__ == "__main__":
    main()
