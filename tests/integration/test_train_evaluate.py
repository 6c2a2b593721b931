"""`tritone train` + `tritone evaluate` against the real gateway and the real local Triton.

A small speaker-identification set: the two human speakers of pocketsphinx-testdata (the
LibriVox reader and the "cards" speaker, their recordings cut into ~2 s pieces) and three
synthetic voices (espeak-ng and flite). A model trained on it with the speaker-embedding
backbone is loaded into a running gateway without a restart; held-out clips of the enrolled
speakers must be named, and a voice nobody enrolled must come back as ``unknown``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import tritone
from examples.make_demo_data import WORDS, build_data, build_words
from support.gateway import REPO, GatewayStartError, RunningGateway, start_gateway
from tritone_tools.evaluation import cli as evaluate
from tritone_tools.evaluation.datasets import list_dataset
from tritone_tools.training import cli

pytestmark = pytest.mark.integration

BACKBONES = ("speaker-embedding", "speech-commands")


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningGateway, Path]]:
    """One gateway for the module on a repository holding both backbones: each test trains
    and loads a model of its own name into it, so neither depends on the other."""
    repository = tmp_path_factory.mktemp("models")
    for backbone in BACKBONES:
        source = REPO / "model_repository" / backbone
        if not (source / "1" / "model.pt").is_file():
            pytest.fail(f"{source} is missing: build it with its recipe in recipes/")
        shutil.copytree(source, repository / backbone)
    try:
        with start_gateway("--model-repository", str(repository)) as gateway:
            yield gateway, repository
    except GatewayStartError as exc:
        pytest.fail(str(exc))


async def test_train_load_classify_and_evaluate_speakers(
    tmp_path: Path, trainer: tuple[RunningGateway, Path]
) -> None:
    train, held = build_data(tmp_path / "data")
    gateway, repository = trainer
    status = await asyncio.to_thread(
        cli.main,
        [
            str(train),
            "--backbone",
            "speaker-embedding",
            "--name",
            "speakers",
            "--repository",
            str(repository),
            "--target",
            gateway.target,
            "--quiet",
        ],
    )
    assert status == 0, gateway.log()
    labels = (repository / "speakers" / "labels.txt").read_text().split()
    assert labels == ["cards", "espeak-f2", "espeak-m3", "flite-slt", "reader", "unknown"]

    clips = list_dataset(held)
    async with tritone.AsyncClient(gateway.target, timeout=120.0) as client:
        info = await client.get_model("speakers")
        assert info.labels == tuple(labels) and info.window_samples == 0 and info.ready
        results = [await client.classify(path, model="speakers") for path, _ in clips]
    predicted = [r.labels[0].label for r in results]
    enrolled = [(p, t) for p, (_, t) in zip(predicted, clips, strict=True) if t != "unknown"]
    strangers = [p for p, (_, t) in zip(predicted, clips, strict=True) if t == "unknown"]
    correct = sum(p == t for p, t in enrolled)
    assert correct >= len(enrolled) - 1, list(zip(predicted, clips, strict=True))
    assert strangers.count("unknown") >= len(strangers) - 1, strangers

    report = tmp_path / "report.json"
    status = await asyncio.to_thread(
        evaluate.main,
        [
            str(held),
            "--model",
            "speakers",
            "--target",
            gateway.target,
            "--quiet",
            "--report",
            str(report),
            "--confusion",
            str(tmp_path / "confusion.png"),
        ],
    )
    assert status == 0
    data = json.loads(report.read_text())
    by_path = {p["path"]: p["predicted"] for p in data["predictions"]}
    assert by_path == {str(path): p for (path, _), p in zip(clips, predicted, strict=True)}
    truth = [t for _, t in clips]
    assert data["accuracy"] == pytest.approx(
        np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
    )
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The README's Enroll-free recipe: Embed vectors, cosine, the model's threshold.
    enrol = [train / "reader"]
    same = sorted((held / "reader").iterdir())[0]
    stranger = sorted((held / "unknown").iterdir())[0]
    verdicts = [
        await asyncio.to_thread(_verify, gateway.target, repository, enrol, clip)
        for clip in (same, stranger)
    ]
    assert verdicts[0].startswith("accepted: cosine"), verdicts
    assert verdicts[1].startswith("rejected: cosine"), verdicts


def _verify(target: str, repository: Path, enrolment: list[Path], clip: Path) -> str:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "verify_speaker.py"),
            *map(str, enrolment),
            "--clip",
            str(clip),
            "--model",
            "speakers",
            "--repository",
            str(repository),
            "--target",
            target,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def test_train_on_the_speech_commands_backbone(
    tmp_path: Path, trainer: tuple[RunningGateway, Path]
) -> None:
    data, held = build_words(tmp_path / "words")
    gateway, repository = trainer
    status = await asyncio.to_thread(
        cli.main,
        [
            str(data),
            "--backbone",
            "speech-commands",
            "--name",
            "fruit",
            "--head",
            "mlp",
            "--repository",
            str(repository),
            "--target",
            gateway.target,
            "--quiet",
        ],
    )
    assert status == 0, gateway.log()
    async with tritone.AsyncClient(gateway.target, timeout=120.0) as client:
        info = await client.get_model("fruit")
        assert info.labels == WORDS and info.window_samples == 16000
        assert info.hop_samples == 8000
        predicted = [
            (await client.classify(path, model="fruit")).labels[0].label
            for path, _ in list_dataset(held)
        ]
    assert sum(p == w for p, w in zip(predicted, WORDS, strict=True)) >= 2, predicted
