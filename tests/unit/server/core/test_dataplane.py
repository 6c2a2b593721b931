"""The DataPlane over the fake Triton: model resolution, option checks, ranking, segments.

The fake's rule (tests/support/fake_backend.py): a window's label is its mean level times
ten, with logit 10 for that label and 0 for the others. Models run at 1000 Hz with windows
of 100 samples and a hop of 50.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from support.fake_backend import LABELS
from support.inprocess import (
    DEFAULT_MODEL,
    LIMITS,
    RATE,
    FakeTriton,
    FloatArray,
    counter,
    dataplane,
    levels,
)
from tritone_server.audio.formats import PcmEncoding, PcmFormat
from tritone_server.core.dataplane import DEFAULT_TOP_K, DataPlane, RawPcmAudio
from tritone_server.core.inference import Inference
from tritone_server.core.models import Catalogue
from tritone_server.core.streams import StreamOptions
from tritone_server.errors import (
    AudioError,
    AudioLimitError,
    BackendUnavailable,
    InvalidRequest,
    ModelNotFound,
)
from tritone_server.metrics import current_model

F32 = PcmFormat(PcmEncoding.F32LE, RATE, 1)


def raw(samples: FloatArray, fmt: PcmFormat = F32) -> RawPcmAudio:
    dtype = "<f4" if fmt.encoding is PcmEncoding.F32LE else "<i2"
    if fmt.encoding is PcmEncoding.S16LE:
        samples = np.round(samples * 32768).astype(np.int16)
    return RawPcmAudio(samples.astype(dtype).tobytes(), fmt)


def wav(samples: FloatArray, rate: int = RATE) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format="WAV", subtype="FLOAT")
    return out.getvalue()


@pytest.fixture
async def plane() -> tuple[DataPlane, FakeTriton]:
    return await dataplane()


# ---------------------------------------------------------------------------------------------
# Model resolution
# ---------------------------------------------------------------------------------------------


async def test_no_model_name_means_the_default_model(plane: tuple[DataPlane, FakeTriton]) -> None:
    dp, backend = plane
    result = await dp.classify("", raw(levels((0.2, 0.3))))
    assert result.spec.name == DEFAULT_MODEL
    assert {model for model, _ in backend.calls} == {DEFAULT_MODEL}


async def test_the_model_is_named_for_the_metrics_of_the_request(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, _ = plane
    token = current_model.set("")
    try:
        dp.model("levels-softmax")
        assert current_model.get() == ""  # looking a model up is no call
        await dp.classify("levels-softmax", raw(levels((0.2, 0.3))))
        assert current_model.get() == "levels-softmax"
        await dp.classify("", raw(levels((0.2, 0.3))))
        assert current_model.get() == DEFAULT_MODEL
    finally:
        current_model.reset(token)


async def test_an_unknown_model_is_not_found_with_the_models_served(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, backend = plane
    with pytest.raises(ModelNotFound, match=r"model 'nope' is not served here \(models: .*levels"):
        await dp.classify("nope", raw(levels((0.2, 0.3))))
    assert backend.calls == []


async def test_a_model_triton_does_not_have_ready_is_unavailable(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, backend = plane
    with pytest.raises(BackendUnavailable, match="model 'unready' is not ready in Triton"):
        await dp.classify("unready", raw(levels((0.2, 0.3))))
    assert backend.calls == []


async def test_before_the_catalogue_is_loaded_every_model_is_unavailable() -> None:
    backend = FakeTriton()
    dp = DataPlane(Catalogue(DEFAULT_MODEL), Inference(backend), limits=LIMITS)
    with pytest.raises(BackendUnavailable, match="starting"):
        await dp.classify(DEFAULT_MODEL, raw(levels((0.2, 0.3))))


async def test_a_config_without_tritones_parameters_is_not_served(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, _ = plane
    with pytest.raises(ModelNotFound, match=r"'foreign' is not served here \(models: broken"):
        dp.model("foreign")


# ---------------------------------------------------------------------------------------------
# Option checks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "expected"), [(None, min(DEFAULT_TOP_K, len(LABELS))), (0, 4), (2, 2), (99, 4)]
)
async def test_top_k_defaults_and_is_capped_at_the_labels(
    plane: tuple[DataPlane, FakeTriton], requested: int | None, expected: int
) -> None:
    dp, _ = plane
    result = await dp.classify(DEFAULT_MODEL, raw(levels((0.2, 0.3))), top_k_requested=requested)
    assert len(result.labels) == expected


async def test_a_negative_top_k_is_refused_before_any_work(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, backend = plane
    with pytest.raises(InvalidRequest, match="top_k must be 0 or more, not -1"):
        await dp.classify(DEFAULT_MODEL, raw(levels((0.2, 0.3))), top_k_requested=-1)
    assert backend.calls == []


async def test_classify_and_embed_refuse_each_others_models(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, backend = plane
    audio = raw(levels((0.2, 0.3)))
    with pytest.raises(InvalidRequest, match="'embedder' gives embeddings, not labels; use Embed"):
        await dp.classify("embedder", audio)
    with pytest.raises(InvalidRequest, match="'levels' gives labels, not embeddings; use Classify"):
        await dp.embed(DEFAULT_MODEL, audio)
    assert backend.calls == []


async def test_embed_returns_the_pooled_vector(plane: tuple[DataPlane, FakeTriton]) -> None:
    dp, _ = plane
    result = await dp.embed("embedder", raw(levels((0.25, 0.2))))
    assert result.spec.name == "embedder"
    np.testing.assert_allclose(result.embedding, [0.25, 0.25], rtol=1e-6)
    assert result.input_frames == 200 and result.duration_s == pytest.approx(0.2)


@pytest.mark.parametrize("name", ["", "../etc", "a/b", "-leading-dash", "x" * 129])
async def test_load_model_refuses_names_that_are_not_directory_names(
    plane: tuple[DataPlane, FakeTriton], name: str
) -> None:
    dp, backend = plane
    with pytest.raises(InvalidRequest, match="must be letters, digits"):
        await dp.load_model(name)
    assert backend.loaded == []


async def test_load_model_loads_in_triton_then_rereads_the_catalogue(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, backend = plane
    backend.unready.discard("unready")
    spec = await dp.load_model("unready")
    assert backend.loaded == ["unready"] and spec.ready
    assert dp.model("unready").ready


# ---------------------------------------------------------------------------------------------
# Audio checks: the DataPlane applies its limits to both raw and encoded audio
# ---------------------------------------------------------------------------------------------


async def test_raw_audio_outside_the_rate_limits_names_the_limit(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, backend = plane
    fmt = PcmFormat(PcmEncoding.F32LE, 500, 1)
    with pytest.raises(AudioLimitError, match="500 Hz is outside") as caught:
        await dp.classify(DEFAULT_MODEL, raw(levels((0.2, 0.3), rate=500), fmt))
    assert caught.value.limit == "sample_rate" and backend.calls == []


async def test_audio_longer_than_the_limit_is_refused(plane: tuple[DataPlane, FakeTriton]) -> None:
    dp, backend = plane
    too_long = levels((0.2, dp.limits.max_duration_s + 0.5))
    for audio in (raw(too_long), wav(too_long)):
        with pytest.raises(AudioLimitError, match="longer than the limit") as caught:
            await dp.classify(DEFAULT_MODEL, audio)
        assert caught.value.limit == "duration"
    assert backend.calls == []


async def test_bytes_that_are_no_audio_file_are_refused(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, _ = plane
    with pytest.raises(AudioError, match="not in a recognised container"):
        await dp.classify(DEFAULT_MODEL, b"this is not a sound file")


async def test_raw_and_encoded_audio_give_the_same_answer(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, _ = plane
    samples = levels((0.1, 0.2), (0.3, 0.2))
    s16 = PcmFormat(PcmEncoding.S16LE, RATE, 1)
    results = [
        await dp.classify(DEFAULT_MODEL, audio, segments=True)
        for audio in (raw(samples), raw(samples, s16), wav(samples))
    ]
    assert len({tuple(label for label, _ in r.labels) for r in results}) == 1
    assert len({len(r.segments) for r in results}) == 1
    for r in results:
        assert (r.input_frames, r.input_sample_rate) == (400, RATE)


# ---------------------------------------------------------------------------------------------
# Clip classification: ranking, top_k, activation, segments
# ---------------------------------------------------------------------------------------------


async def test_clip_scores_are_the_mean_over_windows_ranked_best_first(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, _ = plane
    # 0.6 s: 0.2 s at 0.1 then 0.4 s at 0.3. Windows start every 50 samples: 0..500, so
    # eleven windows: "one" x3 (starts 0, 50, 100), "two" x1 (150: half and half), "three" x7.
    result = await dp.classify(DEFAULT_MODEL, raw(levels((0.1, 0.2), (0.3, 0.4))))
    assert [label for label, _ in result.labels] == ["three", "one", "two", "zero"]
    scores = dict(result.labels)
    assert scores["three"] == pytest.approx(10 * 7 / 11, rel=1e-6)
    assert scores["one"] == pytest.approx(10 * 3 / 11, rel=1e-6)
    assert scores["two"] == pytest.approx(10 * 1 / 11, rel=1e-6)
    assert scores["zero"] == 0.0
    assert result.duration_s == pytest.approx(0.6) and result.input_frames == 600


async def test_equal_scores_keep_the_models_label_order(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, _ = plane
    result = await dp.classify(DEFAULT_MODEL, raw(levels((0.3, 0.3))), top_k_requested=4)
    assert [label for label, _ in result.labels] == ["three", "zero", "one", "two"]


async def test_the_requested_activation_replaces_the_models(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, _ = plane
    audio = raw(levels((0.2, 0.3)))
    softmax = dict((await dp.classify(DEFAULT_MODEL, audio, activation="softmax")).labels)
    assert sum(softmax.values()) == pytest.approx(1.0, rel=1e-6)
    assert softmax["two"] == pytest.approx(np.exp(10) / (np.exp(10) + 3), rel=1e-6)
    sigmoid = dict((await dp.classify(DEFAULT_MODEL, audio, activation="sigmoid")).labels)
    assert sigmoid["two"] == pytest.approx(1 / (1 + np.exp(-10)), rel=1e-6)
    assert sigmoid["zero"] == pytest.approx(0.5)
    # And a model whose own activation is softmax gives softmax scores when none is asked.
    own = dict((await dp.classify("levels-softmax", audio)).labels)
    assert own == pytest.approx(softmax)


async def test_segments_are_one_per_window_with_their_own_ranking(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, _ = plane
    # 0.23 s: full windows start at 0, 50, 100; the tail adds one ending at the clip's end.
    result = await dp.classify(
        DEFAULT_MODEL, raw(levels((0.1, 0.1), (0.3, 0.13))), segments=True, top_k_requested=1
    )
    spans = [(round(s, 3), round(e, 3)) for s, e, _ in result.segments]
    assert spans == [(0.0, 0.1), (0.05, 0.15), (0.1, 0.2), (0.13, 0.23)]
    assert [ranked for _, _, ranked in result.segments] == [
        [("one", 10.0)],
        [("two", 10.0)],
        [("three", 10.0)],
        [("three", 10.0)],
    ]


async def test_no_segments_unless_asked(plane: tuple[DataPlane, FakeTriton]) -> None:
    dp, _ = plane
    assert (await dp.classify(DEFAULT_MODEL, raw(levels((0.2, 0.3))))).segments == []


async def test_a_whole_clip_model_has_one_segment_spanning_the_clip(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, backend = plane
    result = await dp.classify("whole", raw(levels((0.2, 0.37))), segments=True)
    assert [(s, round(e, 3)) for s, e, _ in result.segments] == [(0.0, 0.37)]
    assert backend.calls == [("whole", 1)]


async def test_windows_go_to_triton_in_batches_no_larger_than_the_models(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, backend = plane
    await dp.classify(DEFAULT_MODEL, raw(levels((0.2, 0.6))))  # eleven windows, batch 4
    assert sorted(n for _, n in backend.calls) == [3, 4, 4]


async def test_audio_seconds_are_counted_per_model(plane: tuple[DataPlane, FakeTriton]) -> None:
    dp, _ = plane
    seconds = {"model": DEFAULT_MODEL}
    before = counter(dp.metrics, "tritone_audio_seconds_total", seconds)
    await dp.classify(DEFAULT_MODEL, raw(levels((0.2, 0.25))))
    after = counter(dp.metrics, "tritone_audio_seconds_total", seconds)
    assert after - before == pytest.approx(0.25)


# ---------------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------------


async def test_a_stream_gets_the_resolved_top_k_and_the_checked_format(
    plane: tuple[DataPlane, FakeTriton],
) -> None:
    dp, _ = plane
    stream = dp.open_stream("", F32, StreamOptions(top_k=0))
    assert stream.spec.name == DEFAULT_MODEL and stream.options.top_k == 4
    with pytest.raises(AudioLimitError, match="3 channels") as caught:
        dp.open_stream(DEFAULT_MODEL, PcmFormat(PcmEncoding.S16LE, RATE, 3), StreamOptions())
    assert caught.value.limit == "channels"
    with pytest.raises(InvalidRequest, match="whole clips"):
        dp.open_stream("whole", F32, StreamOptions())
    with pytest.raises(ModelNotFound):
        dp.open_stream("nope", F32, StreamOptions())
