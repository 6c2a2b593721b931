"""`tritone import-hf` end to end: tiny checkpoints -> model directories -> the real gateway.

One gateway (with the real local Triton) for the file, on a temporary repository holding a
copy of `tones` and one model imported before it starts; the other architectures are
imported with ``--target``, i.e. loaded into the running gateway without a restart, and so
are the tiny checkpoints with the real checkpoints' switches (`tiny.VARIANTS`; their full
length x rate matrix runs offline in tests/unit/offline/hf_import/test_hf_variants.py, a subset
here). Scores through the gateway equal ``transformers.pipeline("audio-classification")`` on
the same audio within import-hf's default tolerance (1e-4 on scores; the tiny heads are
well-conditioned, measured differences are ~1e-6); audio at 8 kHz and 44.1 kHz is compared
with the pipeline given the same audio resampled to 16 kHz by soxr (the gateway's
resampler, HQ).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soxr
import transformers

import tritone
from support.gateway import REPO, GatewayStartError, RunningGateway, start_gateway
from tritone_tools.hf_import.checkpoint import SUPPORTED_ARCHITECTURES
from tritone_tools.hf_import.cli import main
from tritone_tools.hf_import.clips import parity_signal
from tritone_tools.hf_import.parity import DEFAULT_TOLERANCE, pipeline_scores
from tritone_tools.hf_import.quiet import quiet_extractor_warnings
from tritone_tools.hf_import.tiny import (
    TINY_LABELS,
    VARIANTS,
    write_tiny_checkpoint,
    write_tiny_variant,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("torch_threads_for_tests")]

FloatArray = npt.NDArray[np.float32]
TOLERANCE = DEFAULT_TOLERANCE
FIRST = "WhisperForAudioClassification"
"""Imported before the gateway starts; the others go in through --target."""


def _name(architecture: str) -> str:
    return f"hf-{architecture.lower().replace('for', '-')}"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf-checkpoints")
    return {arch: write_tiny_checkpoint(arch, root / arch) for arch in SUPPORTED_ARCHITECTURES}


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory, checkpoints: dict[str, Path]) -> Path:
    repo = tmp_path_factory.mktemp("hf-repository")
    shutil.copytree(REPO / "model_repository" / "tones", repo / "tones")
    args = [str(checkpoints[FIRST]), "--name", _name(FIRST), "--repository", str(repo)]
    assert main([*args, "--quiet"]) == 0
    return repo


@pytest.fixture(scope="module")
def gateway(repository: Path) -> Iterator[RunningGateway]:
    try:
        with start_gateway("--model-repository", str(repository)) as running:
            yield running
    except GatewayStartError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def imported(
    gateway: RunningGateway,
    repository: Path,
    checkpoints: dict[str, Path],
) -> dict[str, str]:
    """Every architecture's model name, the later ones loaded into the running gateway."""
    names = {FIRST: _name(FIRST)}
    for arch in SUPPORTED_ARCHITECTURES:
        if arch == FIRST:
            continue
        args = [str(checkpoints[arch]), "--name", _name(arch), "--repository", str(repository)]
        assert main([*args, "--target", gateway.target, "--quiet"]) == 0, gateway.log()
        names[arch] = _name(arch)
    return names


@pytest.fixture(scope="module")
def pipelines(checkpoints: dict[str, Path]) -> dict[str, Callable[..., object]]:
    made: dict[str, Callable[..., object]] = {}
    for arch, path in checkpoints.items():
        with quiet_extractor_warnings():
            made[arch] = transformers.pipeline(
                "audio-classification", model=str(path), top_k=None, device="cpu"
            )
    return made


async def _gateway_scores(
    target: str,
    model: str,
    audio: FloatArray,
    rate: int,
    labels: tuple[str, ...] = TINY_LABELS,
) -> FloatArray:
    async with tritone.AsyncClient(target, timeout=120.0) as client:
        result = await client.classify(audio, sample_rate=rate, model=model, top_k=len(labels))
    scores = {item.label: item.score for item in result.labels}
    assert set(scores) == set(labels)
    return np.array([scores[label] for label in labels], dtype=np.float32)


@pytest.mark.parametrize("architecture", SUPPORTED_ARCHITECTURES)
async def test_scores_equal_the_transformers_pipeline(
    architecture: str,
    gateway: RunningGateway,
    imported: dict[str, str],
    pipelines: dict[str, Callable[..., object]],
) -> None:
    spread = []
    for seconds in (1.0, 3.7, 10.0):
        audio = parity_signal(seconds, 16_000, seed=3)
        got = await _gateway_scores(gateway.target, imported[architecture], audio, 16_000)
        expected = pipeline_scores(pipelines[architecture], audio, TINY_LABELS)
        np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
        spread.append(expected)
    # The tiny heads are calibrated: the scores depend on the clip (so parity means something).
    assert np.abs(np.diff(np.stack(spread), axis=0)).max() > 0.01


@pytest.mark.parametrize("rate", [8_000, 44_100])
@pytest.mark.parametrize(
    "architecture", ["Wav2Vec2ForSequenceClassification", "ASTForAudioClassification"]
)
async def test_other_rates_equal_the_pipeline_on_soxr_resampled_audio(
    architecture: str,
    rate: int,
    gateway: RunningGateway,
    imported: dict[str, str],
    pipelines: dict[str, Callable[..., object]],
) -> None:
    audio = parity_signal(2.3, rate, seed=5)
    got = await _gateway_scores(gateway.target, imported[architecture], audio, rate)
    resampled = np.asarray(soxr.resample(audio, rate, 16_000), dtype=np.float32)
    expected = pipeline_scores(pipelines[architecture], resampled, TINY_LABELS)
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)


async def test_the_catalogue_describes_imported_models(
    gateway: RunningGateway, imported: dict[str, str]
) -> None:
    async with tritone.AsyncClient(gateway.target) as client:
        names = {m.name for m in await client.list_models()}
        assert names == {"tones", *imported.values()}
        info = await client.get_model(imported["HubertForSequenceClassification"])
    assert info.labels == TINY_LABELS
    assert (info.sample_rate, info.window_samples) == (16_000, 0)
    assert info.ready


async def test_audio_shorter_than_the_conv_encoder_is_invalid(
    gateway: RunningGateway, imported: dict[str, str]
) -> None:
    short = parity_signal(300 / 16_000)
    async with tritone.AsyncClient(gateway.target) as client:
        with pytest.raises(tritone.InvalidArgumentError, match="at least 400 samples"):
            await client.classify(
                short, sample_rate=16_000, model=imported["WavLMForSequenceClassification"]
            )


@pytest.fixture(scope="module")
def variants(
    gateway: RunningGateway, repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Callable[..., object]]:
    """Each variant imported into the running gateway (--target) -> its pipeline."""
    root = tmp_path_factory.mktemp("hf-variants")
    pipes: dict[str, Callable[..., object]] = {}
    for name in VARIANTS:
        source = write_tiny_variant(name, root / name)
        args = [str(source), "--name", name, "--repository", str(repository), "--quiet"]
        assert main([*args, "--target", gateway.target]) == 0, gateway.log()
        with quiet_extractor_warnings():
            pipes[name] = transformers.pipeline(
                "audio-classification", model=str(source), top_k=None, device="cpu"
            )
    return pipes


# A subset of the offline matrix: every variant at 3.7 s, and the long and resampled cases
# where the front ends cut (Whisper at 30 s, AST at 10.24 s) or the encoders run longest.
VARIANT_CASES = [
    *((name, 3.7, 16_000) for name in VARIANTS),
    ("mms-lid-126", 35.0, 44_100),
    ("whisper-encoder-30s", 35.0, 8_000),
    ("ast-audioset", 10.0, 44_100),
    ("hubert-large-superb-er", 1.0, 8_000),
]


@pytest.mark.parametrize(("name", "seconds", "rate"), VARIANT_CASES)
async def test_real_architectures_equal_the_pipeline_through_the_gateway(
    name: str,
    seconds: float,
    rate: int,
    gateway: RunningGateway,
    variants: dict[str, Callable[..., object]],
) -> None:
    labels = VARIANTS[name].labels
    audio = parity_signal(seconds, rate, seed=6)
    got = await _gateway_scores(gateway.target, name, audio, rate, labels)
    resampled = np.asarray(soxr.resample(audio, rate, 16_000), dtype=np.float32)
    expected = pipeline_scores(variants[name], resampled, labels)
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)


async def test_a_multi_label_model_gives_a_clip_several_labels(
    gateway: RunningGateway, variants: dict[str, Callable[..., object]]
) -> None:
    labels = VARIANTS["ast-audioset"].labels
    async with tritone.AsyncClient(gateway.target) as client:
        info = await client.get_model("ast-audioset")
        result = await client.classify(
            parity_signal(4.0, 16_000, seed=1), sample_rate=16_000, model="ast-audioset", top_k=9
        )
    assert (info.labels, info.activation) == (labels, "sigmoid")
    scores = [item.score for item in result.labels]
    assert sum(score >= 0.5 for score in scores) >= 2, scores
    assert abs(sum(scores) - 1.0) > 0.05  # sigmoid scores, not a distribution
