"""Audio prepared once: the plain-WAV fast path, raw PCM and the worker all give mono at the
model's rate, with the same values and the same refusals as decode-then-downmix-then-resample.

Real soundfile (to write the files and as the reference decoder), real soxr, real workers.
"""

from __future__ import annotations

import io
import struct
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from tritone_server.audio.decode import decode_encoded
from tritone_server.audio.decode_pool import DecodePool
from tritone_server.audio.dsp import resample, to_mono
from tritone_server.audio.formats import AudioLimits, PcmEncoding, PcmFormat
from tritone_server.audio.prepare import prepare_encoded_async, prepare_pcm_async
from tritone_server.audio.wav import plain_wav
from tritone_server.errors import AudioError, AudioLimitError

F32 = npt.NDArray[np.float32]
LIMITS = AudioLimits()


def tone(rate: int, seconds: float, channels: int = 1) -> F32:
    t = np.arange(round(rate * seconds)) / rate
    cols = [0.5 * np.sin(2 * np.pi * 440 * (1 + 0.25 * c) * t) for c in range(channels)]
    out: F32 = np.stack(cols, axis=1).astype(np.float32)
    return out


def encode(x: F32, rate: int, fmt: str, subtype: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def reference(data: bytes, to_rate: int) -> F32:
    """What the gateway computed before: libsndfile decode, downmix, resample."""
    audio = decode_encoded(data, LIMITS)
    out: F32 = resample(to_mono(audio.samples), audio.sample_rate, to_rate)
    return out


@pytest.mark.parametrize(
    ("subtype", "channels", "rate"),
    [("PCM_16", 1, 16000), ("PCM_16", 2, 44100), ("FLOAT", 3, 8000), ("PCM_16", 1, 48000)],
)
def test_plain_wav_is_found_where_libsndfile_finds_its_samples(
    subtype: str, channels: int, rate: int
) -> None:
    data = encode(tone(rate, 0.2, channels), rate, "WAV", subtype)
    wav = plain_wav(data)
    assert wav is not None
    assert (wav.format.sample_rate, wav.format.channels) == (rate, channels)
    assert wav.frames == round(rate * 0.2)
    assert wav.end == len(data) or data[wav.end :].startswith((b"LIST", b"PEAK"))


@pytest.mark.parametrize(
    ("subtype", "channels", "rate", "to_rate"),
    [
        ("PCM_16", 1, 16000, 16000),
        ("PCM_16", 2, 44100, 16000),
        ("FLOAT", 3, 8000, 16000),
        ("PCM_16", 1, 48000, 16000),
    ],
)
async def test_fast_path_gives_exactly_what_libsndfile_and_dsp_gave(
    subtype: str, channels: int, rate: int, to_rate: int
) -> None:
    data = encode(tone(rate, 0.5, channels), rate, "WAV", subtype)
    got = await prepare_encoded_async(data, to_rate, LIMITS)
    np.testing.assert_array_equal(got.samples, reference(data, to_rate))
    assert (got.sample_rate, got.input_sample_rate, got.input_channels) == (
        to_rate,
        rate,
        channels,
    )
    assert got.input_frames == round(rate * 0.5)


def _replace_fmt(data: bytes, **fields: int) -> bytes:
    """A copy of a canonical 44-byte-header WAV with some `fmt ` fields changed."""
    tag, ch, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", data, 20)
    values = dict(tag=tag, ch=ch, rate=rate, byte_rate=byte_rate, align=align, bits=bits)
    values.update(fields)
    head = struct.pack("<HHIIHH", *values.values())
    return data[:20] + head + data[36:]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: encode(tone(8000, 0.1), 8000, "WAV", "PCM_24"),  # 24-bit: libsndfile's job
        lambda d: encode(tone(8000, 0.1), 8000, "WAV", "PCM_U8"),
        lambda d: encode(tone(8000, 0.1), 8000, "FLAC", "PCM_16"),
        lambda d: d[:-3],  # data chunk claims more than was sent
        lambda d: d[:40] + struct.pack("<I", 3) + d[44:],  # not whole frames
        lambda d: b"RIFX" + d[4:],
        lambda d: _replace_fmt(d, align=3),
        lambda d: d[:12],
    ],
)
def test_anything_unusual_is_not_plain(mutate: object) -> None:
    data = encode(tone(8000, 0.1), 8000, "WAV", "PCM_16")
    assert plain_wav(mutate(data)) is None  # type: ignore[operator]


async def test_fast_path_refuses_like_the_decoder() -> None:
    long = encode(np.zeros((16000 * 3, 1), np.float32), 16000, "WAV", "PCM_16")
    with pytest.raises(AudioLimitError, match=r"its header declares 3\.0 s") as caught:
        await prepare_encoded_async(long, 16000, AudioLimits(max_duration_s=2))
    assert caught.value.limit == "duration"
    nine = encode(np.zeros((100, 9), np.float32), 16000, "WAV", "PCM_16")
    with pytest.raises(AudioLimitError, match="9 channels"):
        await prepare_encoded_async(nine, 16000, LIMITS)
    low = encode(np.zeros((100, 1), np.float32), 800, "WAV", "PCM_16")
    with pytest.raises(AudioLimitError, match="800 Hz"):
        await prepare_encoded_async(low, 16000, LIMITS)
    x = tone(8000, 0.1)
    x[5, 0] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        await prepare_encoded_async(encode(x, 8000, "WAV", "FLOAT"), 16000, LIMITS)
    with pytest.raises(AudioError, match="empty"):
        await prepare_encoded_async(b"", 16000, LIMITS)


async def test_raw_pcm_is_prepared_like_the_decoded_clip() -> None:
    x = tone(22050, 0.4, channels=2)
    data = (x * 32767).astype("<i2").tobytes()
    fmt = PcmFormat(PcmEncoding.S16LE, 22050, 2)
    got = await prepare_pcm_async(data, fmt, 16000, LIMITS)
    scaled = (x * 32767).astype(np.int16).astype(np.float32) / np.float32(32768)
    np.testing.assert_allclose(got.samples, resample(to_mono(scaled), 22050, 16000), atol=1e-6)
    assert (got.input_frames, got.input_channels, got.duration_s) == (x.shape[0], 2, 0.4)


@pytest.fixture
async def pool() -> AsyncIterator[DecodePool]:
    async with DecodePool(workers=1) as p:
        yield p


async def test_worker_returns_mono_at_the_model_rate(pool: DecodePool) -> None:
    data = encode(tone(44100, 0.5, channels=2), 44100, "FLAC", "PCM_16")
    got = await prepare_encoded_async(data, 16000, LIMITS, pool=pool)
    np.testing.assert_array_equal(got.samples, reference(data, 16000))
    assert got.samples.ndim == 1 and got.sample_rate == 16000
    assert (got.input_frames, got.input_sample_rate, got.input_channels) == (22050, 44100, 2)
    # and without a pool, in a thread, the same
    alone = await prepare_encoded_async(data, 16000, LIMITS)
    np.testing.assert_array_equal(alone.samples, got.samples)


async def test_a_file_of_one_frame_prepares_to_no_samples_without_an_error(
    pool: DecodePool,
) -> None:
    """A frame or two at 48 kHz resamples to nothing at 16 kHz: an empty array has no buffer to
    cast, which once made the worker and the pool fail (the fuzzer's INTERNAL on truncated
    AIFF/WAV files)."""
    data = encode(tone(48000, 1 / 48000, channels=2), 48000, "AIFF", "PCM_16")
    got = await prepare_encoded_async(data, 16000, LIMITS, pool=pool)
    assert got.samples.shape == (0,)
    assert (got.input_frames, got.input_sample_rate, got.input_channels) == (1, 48000, 2)
    assert pool.worker_pids  # the worker was not lost
