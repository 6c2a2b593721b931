"""The torch front ends of `tritone import-hf` equal the Hugging Face feature extractors.

The extractors run as transformers runs them (Whisper's torch STFT path; AST's numpy path,
and AST's torchaudio path with a stand-in for torchaudio, which may not be installed here:
support/torchaudio_kaldi.py); the front ends run in torch as they will inside the exported
model. Tolerance 1e-4, relative for values above 1 (1e-3 against the float32 torchaudio
path, whose scores are then held to 1e-4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch
import transformers

from tritone_tools.hf_import.checkpoint import load_checkpoint
from tritone_tools.hf_import.classifier import _ast_filters_and_window, build_classifier
from tritone_tools.hf_import.clips import parity_signal
from tritone_tools.hf_import.frontends import KaldiFbank, UtteranceNormalizer, WhisperLogMel
from tritone_tools.hf_import.parity import DEFAULT_TOLERANCE
from tritone_tools.hf_import.quiet import quiet_extractor_warnings
from tritone_tools.hf_import.tiny import write_tiny_checkpoint
from tritone_tools.hf_import.trace import trace_classifier

pytestmark = pytest.mark.usefixtures("torch_threads_for_tests")

FloatArray = npt.NDArray[np.float32]
TOLERANCE = 1e-4
# Samples at 16 kHz: the shortest accepted, odd sizes, 1 s, 3.7 s, 10 s.
TORCHAUDIO_TOLERANCE = 1e-3
"""For ASTFeatureExtractor's torchaudio path, which computes in float32: a mel bin holding
1e-4 of its frame's energy keeps only ~3 digits through a float32 FFT, about 1e-3 in its
log, 1e-4 after AST's normalisation (/ 2 x 4.27); measured up to 1.6e-4, so 1e-3 allows
for other CPUs. What matters, the model's scores, is checked at import-hf's 1e-4 below."""
LENGTHS = (400, 401, 1234, 16_000, 59_200, 160_000)


def _clip(n: int, seed: int = 0) -> FloatArray:
    return parity_signal(n / 16_000, 16_000, seed)


def _torch(frontend: torch.nn.Module, audio: FloatArray) -> FloatArray:
    batch = torch.from_numpy(np.atleast_2d(audio))
    with torch.inference_mode():
        result: FloatArray = frontend(batch).numpy()
    return result


def _assert_close(got: FloatArray, expected: FloatArray, tolerance: float = TOLERANCE) -> None:
    assert got.shape == expected.shape
    scale = np.maximum(1.0, np.abs(expected))
    worst = float((np.abs(got - expected) / scale).max())
    assert worst <= tolerance, f"max relative difference {worst:.3g}"


@pytest.mark.parametrize("do_normalize", [True, False])
@pytest.mark.parametrize("n", LENGTHS)
def test_normalizer_equals_wav2vec2_feature_extractor(n: int, do_normalize: bool) -> None:
    extractor = transformers.Wav2Vec2FeatureExtractor(do_normalize=do_normalize)  # type: ignore[no-untyped-call]
    audio = _clip(n) * 3.0 + 0.2  # an offset and a scale for the normalisation to remove
    expected = extractor(audio, sampling_rate=16_000, return_tensors="np")["input_values"]
    _assert_close(_torch(UtteranceNormalizer(do_normalize), audio), expected)


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("n", (1, 200, *LENGTHS, 500_000))
def test_whisper_log_mel_equals_whisper_feature_extractor(n: int, n_mels: int) -> None:
    extractor = transformers.WhisperFeatureExtractor(feature_size=n_mels)  # type: ignore[no-untyped-call]
    frontend = WhisperLogMel(
        extractor.mel_filters,
        n_fft=extractor.n_fft,
        hop_length=extractor.hop_length,
        n_samples=extractor.n_samples,
    )
    audio = _clip(n)
    expected = extractor(audio, sampling_rate=16_000, return_tensors="np")["input_features"]
    got = _torch(frontend, audio)
    assert got.shape == (1, n_mels, 3000)  # padded (or cut) to 30 s, as the extractor does
    _assert_close(got, expected)


def _ast(max_length: int, do_normalize: bool = True) -> transformers.ASTFeatureExtractor:
    with quiet_extractor_warnings():
        extractor: transformers.ASTFeatureExtractor = transformers.ASTFeatureExtractor(  # type: ignore[no-untyped-call]
            max_length=max_length, do_normalize=do_normalize
        )
    return extractor


def _kaldi(extractor: transformers.ASTFeatureExtractor) -> KaldiFbank:
    filters, window = _ast_filters_and_window(extractor)
    return KaldiFbank(
        filters,
        window,
        max_length=extractor.max_length,
        mean=extractor.mean,
        std=extractor.std,
        do_normalize=extractor.do_normalize,
    )


@pytest.mark.parametrize("max_length", [128, 1024])
@pytest.mark.parametrize("n", LENGTHS)
def test_kaldi_fbank_equals_ast_feature_extractor(n: int, max_length: int) -> None:
    extractor = _ast(max_length)
    audio = _clip(n)
    expected = extractor(audio, sampling_rate=16_000, return_tensors="np")["input_values"]
    got = _torch(_kaldi(extractor), audio)
    assert got.shape == (1, max_length, 128)
    _assert_close(got, expected)


def test_kaldi_fbank_without_normalisation() -> None:
    extractor = _ast(300, do_normalize=False)
    audio = _clip(48_000, seed=2)
    expected = extractor(audio, sampling_rate=16_000, return_tensors="np")["input_values"]
    _assert_close(_torch(_kaldi(extractor), audio), expected)


def test_filters_without_the_extractors_arrays_are_the_same() -> None:
    """With torchaudio installed, ASTFeatureExtractor keeps no filters: ours are recomputed."""
    extractor = _ast(128)
    filters, window = _ast_filters_and_window(extractor)
    bare = _ast(128)
    del bare.mel_filters, bare.window
    filters_again, window_again = _ast_filters_and_window(bare)
    np.testing.assert_array_equal(filters, filters_again)
    np.testing.assert_array_equal(window, window_again)


def test_front_ends_treat_each_row_of_a_batch_alone() -> None:
    clips = np.stack([_clip(20_000, seed) for seed in range(3)])
    whisper = transformers.WhisperFeatureExtractor()  # type: ignore[no-untyped-call]
    frontends: list[torch.nn.Module] = [
        UtteranceNormalizer(),
        WhisperLogMel(whisper.mel_filters),
        _kaldi(_ast(128)),
    ]
    for frontend in frontends:
        together = _torch(frontend, clips)
        for i in range(3):
            np.testing.assert_allclose(together[i], _torch(frontend, clips[i])[0], atol=1e-5)


def test_front_ends_name_no_device() -> None:
    """Windows and filters are buffers: they follow the module to whatever device."""
    whisper = transformers.WhisperFeatureExtractor()  # type: ignore[no-untyped-call]
    kaldi = _kaldi(_ast(128))
    log_mel = WhisperLogMel(whisper.mel_filters)
    assert {name for name, _ in kaldi.named_buffers()} == {"window", "mel_filters"}
    assert {name for name, _ in log_mel.named_buffers()} == {"window", "mel_filters"}
    # Whisper's filters are the extractor's own array (80 bins), transposed.
    np.testing.assert_allclose(log_mel.mel_filters.numpy().T, whisper.mel_filters, rtol=1e-6)


@pytest.fixture
def torchaudio_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """ASTFeatureExtractor as it runs with torchaudio installed: its torchaudio branch, with
    support/torchaudio_kaldi.py in torchaudio's place (torchaudio may not be installed here;
    that module says what it reproduces)."""
    from transformers.models.audio_spectrogram_transformer import (
        feature_extraction_audio_spectrogram_transformer as ast_module,
    )

    from support import torchaudio_kaldi

    monkeypatch.setattr(ast_module, "is_speech_available", lambda: True)
    monkeypatch.setattr(ast_module, "ta_kaldi", torchaudio_kaldi, raising=False)


@pytest.mark.parametrize("max_length", [128, 1024])
@pytest.mark.parametrize("n", LENGTHS)
def test_kaldi_fbank_equals_the_extractors_torchaudio_path(
    n: int, max_length: int, torchaudio_path: None
) -> None:
    extractor = _ast(max_length)
    # On this path the extractor keeps no filters: the export recomputes them.
    assert getattr(extractor, "mel_filters", None) is None
    audio = _clip(n, seed=3)
    expected = extractor(audio, sampling_rate=16_000, return_tensors="np")["input_values"]
    got = _torch(_kaldi(extractor), audio)
    assert got.shape == expected.shape == (1, max_length, 128)
    _assert_close(got, expected, TORCHAUDIO_TOLERANCE)


def test_the_two_extractor_paths_agree_with_each_other(torchaudio_path: None) -> None:
    """The stand-in is not a copy of our front end: it differs from the numpy path by
    float32 rounding only, and a wrong option (here a Hamming window) shows."""
    from support import torchaudio_kaldi

    audio = _clip(59_200, seed=5)
    torch_path = _ast(1024)(audio, sampling_rate=16_000, return_tensors="np")["input_values"]
    frames = torchaudio_kaldi.fbank(torch.from_numpy(audio)[None], **_KALDI_CALL)
    assert frames.shape == (1 + (59_200 - 400) // 160, 128)
    with pytest.raises(AssertionError, match="update the stand-in"):
        torchaudio_kaldi.fbank(torch.from_numpy(audio)[None], **{**_KALDI_CALL, "dither": 1.0})
    difference = np.abs(torch_path - _numpy_path(audio, 1024)).max()
    assert 0.0 < difference <= TORCHAUDIO_TOLERANCE, difference


_KALDI_CALL: dict[str, object] = {
    "sample_frequency": 16_000,
    "window_type": "hanning",
    "num_mel_bins": 128,
}


def _numpy_path(audio: FloatArray, max_length: int) -> FloatArray:
    """The numpy path's features, whatever the fixture patched (the extractor asks
    is_speech_available() when made and again on every call)."""
    from transformers.models.audio_spectrogram_transformer import (
        feature_extraction_audio_spectrogram_transformer as ast_module,
    )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ast_module, "is_speech_available", lambda: False)
        features = _ast(max_length)(audio, sampling_rate=16_000, return_tensors="np")
    result: FloatArray = features["input_values"]
    return result


def test_scores_on_the_torchaudio_path_equal_the_exported_model(
    torchaudio_path: None, tmp_path: Path
) -> None:
    """A checkpoint's scores computed from the torchaudio-path features equal the exported
    model's (whose front end follows the numpy path) within import-hf's tolerance."""
    source = write_tiny_checkpoint("ASTForAudioClassification", tmp_path / "ast")
    checkpoint = load_checkpoint(source)
    traced = trace_classifier(build_classifier(checkpoint), 16_000)
    for seconds in (1.0, 3.7):
        audio = parity_signal(seconds, 16_000, seed=2)
        features = checkpoint.feature_extractor(  # type: ignore[operator]
            audio, sampling_rate=16_000, return_tensors="pt"
        )
        with torch.inference_mode():
            expected = checkpoint.model(**features).logits.softmax(-1).numpy()
            got = traced(torch.from_numpy(audio)[None]).softmax(-1).numpy()
        assert float(np.abs(got - expected).max()) <= DEFAULT_TOLERANCE
