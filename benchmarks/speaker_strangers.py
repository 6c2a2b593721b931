"""Speaker identification against real strangers: false-accept and false-reject rates.

    python benchmarks/speaker_strangers.py [--out benchmarks/speaker_strangers.json]
                                           [--rotations 0 1 ...]

Real people, kept apart from the project's other data: the voice actors of Debian's Fish
Fillets dialogues (fillets-ng-data-cs and fillets-ng-data-nl: each language's small fish
and big fish are one actor each; which fish speaks a line is the font its ``dialogId``
names in the level's dialogs.lua, ``font_small`` or ``font_big``; other characters' lines
are left out) and two readers of pocketsphinx-testdata (the LibriVox reader, his five
recordings cut into ~2.5 s pieces, and the "cards" speaker).

Each rotation enrols some people with ``tritone train`` (speaker-embedding backbone, the
threshold calibrated on train's own validation split plus one more person's clips in an
``unknown`` folder, as the README describes), and the model it writes is then scored on
clips used for nothing else: each enrolled person's test clips (never seen by train) and
the test clips of people held out entirely (strangers). Figures:

- false rejection: an enrolled person's test clip answered ``unknown``;
- misidentification: answered as another enrolled person;
- false acceptance: a stranger's clip answered as any enrolled person.

Writes the figures, per rotation and pooled, to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "server"))

from tritone_server.audio.dsp import frame_windows  # noqa: E402
from tritone_tools.training import cli as train_cli  # noqa: E402
from tritone_tools.training.data import load_audio  # noqa: E402
from tritone_tools.training.export import UNKNOWN_LABEL, load_scripted, softmax  # noqa: E402

FILLETS = Path("/usr/share/games/fillets-ng")
TESTDATA = Path("/usr/share/pocketsphinx/test/data")
RATE = 16_000
MIN_SECONDS = 1.5
ENROL = 60
TEST = 40
SEED = 0
PACKAGES = "fillets-ng-data fillets-ng-data-cs fillets-ng-data-nl pocketsphinx-testdata"
_DIALOG = re.compile(r'dialogId\(\s*"([^"]+)"\s*,\s*"(font_small|font_big)"')


@dataclass(frozen=True)
class Rotation:
    enrolled: tuple[str, ...]
    calibration: str
    """Held out from enrolment; its enrolment clips fill train's `unknown` folder."""
    strangers: tuple[str, ...]


# Every person is a stranger in at least one rotation; the "cards" speaker has five short
# clips only, so is never enrolled. Same-language pairs (the two fish of one dub) are the
# hard strangers: same recording set-up, same language.
ROTATIONS: tuple[Rotation, ...] = (
    Rotation(("cs-small", "nl-big", "reader"), "nl-small", ("cs-big", "cards")),
    Rotation(("cs-big", "nl-small", "reader"), "cards", ("cs-small", "nl-big")),
    Rotation(("cs-small", "cs-big", "nl-small", "nl-big"), "cards", ("reader",)),
    Rotation(("cs-small", "nl-small"), "reader", ("cs-big", "nl-big", "cards")),
    Rotation(("cs-big", "nl-big", "reader"), "cs-small", ("nl-small", "cards")),
)


def fillets_clips(language: str, font: str) -> list[Path]:
    """The language's recordings of the lines set in ``font`` (one fish, one actor)."""
    ids: set[str] = set()
    for dialogs in sorted((FILLETS / "script").glob("*/dialogs*.lua")):
        ids.update(i for i, f in _DIALOG.findall(dialogs.read_text(errors="replace")) if f == font)
    return sorted(
        path for path in (FILLETS / "sound").glob(f"*/{language}/*.ogg") if path.stem in ids
    )


def _long_enough(paths: Sequence[Path]) -> list[Path]:
    return [p for p in paths if sf.info(str(p)).duration >= MIN_SECONDS]


def reader_pieces(folder: Path) -> list[Path]:
    """The LibriVox reader's five recordings cut into ~2.5 s pieces (WAV files in folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    pieces = []
    for path in sorted((TESTDATA / "librivox").glob("*.wav")):
        audio = load_audio(path, RATE)
        count = max(1, round(len(audio) / (2.5 * RATE)))
        for i, part in enumerate(np.array_split(audio, count)):
            piece = folder / f"{path.stem}-{i}.wav"
            sf.write(str(piece), part, RATE)
            pieces.append(piece)
    return pieces


def people(workdir: Path) -> dict[str, list[Path]]:
    missing = [
        str(p)
        for p in (FILLETS / "sound", TESTDATA / "librivox", TESTDATA / "cards")
        if not p.is_dir()
    ]
    if missing or not list((FILLETS / "sound").glob("*/cs/*.ogg")):
        raise SystemExit(f"missing {missing or 'the Czech dub'}: apt-get install {PACKAGES}")
    found = {
        f"{lang}-{size}": _long_enough(fillets_clips(lang, f"font_{size}"))
        for lang in ("cs", "nl")
        for size in ("small", "big")
    }
    found["reader"] = reader_pieces(workdir / "reader")
    found["cards"] = sorted((TESTDATA / "cards").glob("*.wav"))
    return found


def split(clips: list[Path], person: str) -> tuple[list[Path], list[Path]]:
    """(enrolment, test): disjoint, seeded; small sets split about in half."""
    order = np.random.default_rng([SEED, sum(map(ord, person))]).permutation(len(clips))
    shuffled = [clips[i] for i in order]
    if len(shuffled) >= ENROL + TEST:
        return shuffled[:ENROL], shuffled[ENROL : ENROL + TEST]
    half = (len(shuffled) + 1) // 2
    return shuffled[:half], shuffled[half:]


def _link(paths: Sequence[Path], folder: Path) -> None:
    folder.mkdir(parents=True)
    for i, path in enumerate(paths):
        (folder / f"{i:03d}{path.suffix}").symlink_to(path)


def _answers(model_dir: Path, paths: Sequence[Path]) -> list[str]:
    """What the gateway would answer: the top label of the mean softmax over windows."""
    model = load_scripted(model_dir / "1" / "model.pt")
    labels = (model_dir / "labels.txt").read_text().split()
    answers = []
    import torch

    with torch.inference_mode():
        for path in paths:
            framed, _ = frame_windows(load_audio(path, RATE), 0, 0)
            logits = model(torch.from_numpy(np.ascontiguousarray(framed))).numpy()
            answers.append(labels[int(softmax(logits).mean(axis=0).argmax())])
    return answers


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _threshold(config: Path) -> float:
    """The calibrated threshold, as a service reads it: the config parameter."""
    found = re.search(
        r'"unknown_threshold"\s*value:?\s*\{\s*string_value:\s*"([^"]+)"', config.read_text()
    )
    if found is None:
        raise SystemExit(f"{config} has no unknown_threshold parameter")
    return float(found.group(1))


def run_rotation(
    index: int, rotation: Rotation, clips: dict[str, list[Path]], workdir: Path
) -> dict[str, object]:
    repository = workdir / f"repo-{index}"
    repository.mkdir()
    (repository / "speaker-embedding").symlink_to(REPO / "model_repository" / "speaker-embedding")
    data = workdir / f"data-{index}"
    parts = {person: split(paths, person) for person, paths in clips.items()}
    for person in rotation.enrolled:
        _link(parts[person][0], data / person)
    _link(parts[rotation.calibration][0], data / UNKNOWN_LABEL)
    args = [str(data), "--backbone", "speaker-embedding", "--name", "speakers"]
    args += ["--repository", str(repository), "--quiet", "--seed", str(SEED)]
    args += ["--test-fraction", "0"]  # the test clips here are the benchmark's own
    with _quiet():
        status = train_cli.main(args)
    if status != 0:
        raise SystemExit(f"tritone train failed on rotation {index}")
    model_dir = repository / "speakers"
    threshold = _threshold(model_dir / "config.pbtxt")
    genuine = rejected = wrong = 0
    for person in rotation.enrolled:
        answers = _answers(model_dir, parts[person][1])
        genuine += len(answers)
        rejected += sum(a == UNKNOWN_LABEL for a in answers)
        wrong += sum(a not in (UNKNOWN_LABEL, person) for a in answers)
    impostor = accepted = 0
    for person in rotation.strangers:
        answers = _answers(model_dir, parts[person][1])
        impostor += len(answers)
        accepted += sum(a != UNKNOWN_LABEL for a in answers)
    return {
        **asdict(rotation),
        "threshold": threshold,
        "enrolled_test_clips": genuine,
        "false_rejections": rejected,
        "misidentifications": wrong,
        "stranger_clips": impostor,
        "false_acceptances": accepted,
        "false_rejection_rate": rejected / genuine,
        "misidentification_rate": wrong / genuine,
        "false_acceptance_rate": accepted / impostor,
    }


def evaluate(rotations: Sequence[int]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="speaker-strangers-") as tmp:
        workdir = Path(tmp)
        clips = people(workdir)
        results = [run_rotation(i, ROTATIONS[i], clips, workdir) for i in rotations]
        counts = {person: len(paths) for person, paths in clips.items()}
    totals = {
        key: sum(int(r[key]) for r in results)  # type: ignore[call-overload]
        for key in (
            "enrolled_test_clips",
            "false_rejections",
            "misidentifications",
            "stranger_clips",
            "false_acceptances",
        )
    }
    return {
        "command": "python benchmarks/speaker_strangers.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "clips_per_person": counts,
        "enrol_clips": ENROL,
        "test_clips": TEST,
        "min_seconds": MIN_SECONDS,
        "rotations": results,
        "pooled": {
            **totals,
            "false_rejection_rate": totals["false_rejections"] / totals["enrolled_test_clips"],
            "misidentification_rate": totals["misidentifications"] / totals["enrolled_test_clips"],
            "false_acceptance_rate": totals["false_acceptances"] / totals["stranger_clips"],
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/speaker_strangers.json")
    parser.add_argument("--rotations", type=int, nargs="*", default=list(range(len(ROTATIONS))))
    args = parser.parse_args(argv)
    report = evaluate(args.rotations)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for r in report["rotations"]:  # type: ignore[attr-defined]
        print(
            f"enrolled {','.join(r['enrolled'])}; strangers {','.join(r['strangers'])}: "
            f"threshold {r['threshold']:.3f}, false rejection {r['false_rejection_rate']:.1%}, "
            f"misidentified {r['misidentification_rate']:.1%}, "
            f"false acceptance {r['false_acceptance_rate']:.1%}"
        )
    pooled = report["pooled"]
    print(f"pooled: {pooled}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
