"""The committed speaker-embedding model against Resemblyzer itself, on real recordings.

Needs Resemblyzer==0.1.4 (with librosa, scipy, webrtcvad-wheels) and Debian's
pocketsphinx-testdata; without them these tests fail, naming what is missing.
"""

import importlib
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import torch

from tritone_server.triton.torchscript import quiet_torchscript

ROOT = Path(__file__).resolve().parents[3]
MODEL_PT = ROOT / "model_repository" / "speaker-embedding" / "1" / "model.pt"
DATA_DIR = Path("/usr/share/pocketsphinx/test/data")
LONG_CLIP = "librivox/sense_and_sensibility_01_austen_64kb-0870.wav"  # 7.1 s: 7 partials
SHORT_CLIP = "cards/001.wav"  # 1.1 s: one zero-padded partial
OTHER_CLIP = "cards/005.wav"

Audio = npt.NDArray[np.float32]


def _recording(relative: str) -> Audio:
    path = DATA_DIR / relative
    if not path.exists():
        pytest.fail(
            f"{path} is missing: install Debian's pocketsphinx-testdata "
            "(apt-get install pocketsphinx-testdata)"
        )
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert rate == 16_000
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)


@pytest.fixture(scope="module")
def model() -> Any:
    assert MODEL_PT.exists(), f"{MODEL_PT} is missing: run recipes/build_speaker_embedding.py"
    with quiet_torchscript():
        module = torch.jit.load(str(MODEL_PT), map_location="cpu")  # type: ignore[no-untyped-call]
    return module.eval()


@pytest.fixture(scope="module")
def resemblyzer() -> ModuleType:
    try:
        with warnings.catch_warnings():
            # resemblyzer.audio imports scipy.ndimage.morphology, deprecated by scipy.
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module("resemblyzer")
    except ImportError as exc:
        pytest.fail(
            "Resemblyzer is not importable: pip install --no-deps Resemblyzer==0.1.4 "
            f"librosa==0.11.0 webrtcvad-wheels==2.0.14.post1 ({exc})"
        )


@pytest.fixture(scope="module")
def encoder(resemblyzer: ModuleType) -> Any:
    return resemblyzer.VoiceEncoder("cpu", verbose=False)


def _embed(model: Any, *clips: Audio) -> Audio:
    with torch.inference_mode():
        out = model(torch.from_numpy(np.stack(clips)))
    return np.asarray(out.numpy(), dtype=np.float32)


@pytest.mark.parametrize("clip", [LONG_CLIP, SHORT_CLIP])
def test_matches_resemblyzer(model: Any, resemblyzer: ModuleType, encoder: Any, clip: str) -> None:
    wav = _recording(clip)
    ours = _embed(model, wav)[0]
    # The model normalises the volume as Resemblyzer's preprocess_wav does; VAD trimming is
    # the caller's step, so the reference gets the volume normalisation only.
    reference = encoder.embed_utterance(resemblyzer.normalize_volume(wav, -30, increase_only=True))
    cosine = float(np.dot(ours, reference) / np.linalg.norm(ours) / np.linalg.norm(reference))
    assert cosine >= 0.999, f"{clip}: cosine {cosine:.6f} with Resemblyzer"


def test_embedding_is_unit_norm_and_non_negative(model: Any) -> None:
    out = _embed(model, _recording(LONG_CLIP), _recording(LONG_CLIP)[::-1].copy())
    assert out.shape == (2, 256)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert (out >= 0).all()


def test_silence_gives_a_finite_embedding(model: Any) -> None:
    out = _embed(model, np.zeros(16_000, dtype=np.float32))
    assert np.isfinite(out).all()


def test_batch_of_equal_length_clips_equals_one_by_one(model: Any) -> None:
    a, b = _recording(OTHER_CLIP), _recording(LONG_CLIP)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    together = _embed(model, a, b)
    alone = np.concatenate([_embed(model, a), _embed(model, b)])
    np.testing.assert_allclose(together, alone, atol=1e-5)
