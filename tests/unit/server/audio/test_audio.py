"""tritone_server.audio (formats, decode, decode_pool, dsp): decoding, PCM, downmix, windows.

Real soundfile, real soxr, audio generated here; the DecodePool tests start real worker
processes.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from support.faults import alive
from support.waiting import wait_for
from tritone_server.audio import decode as decode_module
from tritone_server.audio.decode import decode_encoded
from tritone_server.audio.decode_pool import DecodePool, decode_encoded_async
from tritone_server.audio.dsp import (
    StreamResampler,
    frame_windows,
    resample,
    to_mono,
    window_starts,
)
from tritone_server.audio.formats import (
    AudioLimits,
    DecodedAudio,
    PcmEncoding,
    PcmFormat,
    PcmFramer,
    pcm_to_float,
)
from tritone_server.errors import AudioError, AudioLimitError

F32 = npt.NDArray[np.float32]
LIMITS = AudioLimits()


# ---- helpers -------------------------------------------------------------------------------


def tone(rate: int, seconds: float, channels: int = 1, freq: float = 440.0) -> F32:
    """A sine per channel (different frequency per channel), amplitude 0.5, [frames, ch]."""
    t = np.arange(round(rate * seconds)) / rate
    cols = [0.5 * np.sin(2 * np.pi * freq * (1 + 0.25 * c) * t) for c in range(channels)]
    out: F32 = np.stack(cols, axis=1).astype(np.float32)
    return out


def encode(x: F32, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def flac_with_total_samples(data: bytes, total: int) -> bytes:
    """Patch the 36-bit total-samples field of a FLAC STREAMINFO block."""
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO comes first
    # 4 "fLaC" + 4 block header + 10 (block sizes, frame sizes) -> 64 bits holding
    # rate (20), channels-1 (3), bits-1 (5), total samples (36)
    patched = bytearray(data)
    word = int.from_bytes(patched[18:26], "big")
    word = (word & ~((1 << 36) - 1)) | total
    patched[18:26] = word.to_bytes(8, "big")
    return bytes(patched)


def s16_bytes(x: F32) -> bytes:
    """Interleaved s16le bytes of [frames, channels] floats in [-1, 1)."""
    return bytes(np.round(x * 32767).astype("<i2").tobytes())


def delay_between(ref: F32, sig: F32, max_lag: int = 50) -> int:
    """The lag (in samples) at which `sig` best matches `ref` (positive: sig is late)."""
    n = min(len(ref), len(sig)) - 2 * max_lag
    a = ref[max_lag : max_lag + n]
    errors = [
        float(np.mean(np.abs(sig[max_lag + d : max_lag + d + n] - a)))
        for d in range(-max_lag, max_lag + 1)
    ]
    return int(np.argmin(errors)) - max_lag


# ---- limits and formats --------------------------------------------------------------------


def test_audio_limit_error_is_an_audio_error_with_a_limit() -> None:
    err = AudioLimitError("too long", limit="duration")
    assert isinstance(err, AudioError) and isinstance(err, ValueError)
    assert err.limit == "duration" and str(err) == "too long"


def test_pcm_format_frame_bytes_and_validation() -> None:
    assert PcmEncoding.S16LE.bytes_per_sample == 2 and PcmEncoding.F32LE.bytes_per_sample == 4
    assert PcmFormat(PcmEncoding.S16LE, 16000, 2).frame_bytes == 4
    assert PcmFormat(PcmEncoding.F32LE, 16000, 3).frame_bytes == 12
    PcmFormat(PcmEncoding.S16LE, 16000).validate(LIMITS)
    with pytest.raises(AudioError, match="sample rate") as e1:
        PcmFormat(PcmEncoding.S16LE, 0).validate(LIMITS)
    assert not isinstance(e1.value, AudioLimitError)
    with pytest.raises(AudioLimitError, match="500 Hz") as e2:
        PcmFormat(PcmEncoding.S16LE, 500).validate(LIMITS)
    assert e2.value.limit == "sample_rate"
    with pytest.raises(AudioError, match="channel"):
        PcmFormat(PcmEncoding.S16LE, 16000, 0).validate(LIMITS)
    with pytest.raises(AudioLimitError, match="9 channels") as e3:
        PcmFormat(PcmEncoding.S16LE, 16000, 9).validate(LIMITS)
    assert e3.value.limit == "channels"


def test_decoded_audio_properties() -> None:
    a = DecodedAudio(np.zeros((8000, 2), np.float32), 16000)
    assert (a.frames, a.channels, a.duration_s) == (8000, 2, 0.5)
    with pytest.raises(ValueError):
        DecodedAudio(np.zeros(10, np.float32), 16000)


# ---- raw PCM -------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
def test_pcm_s16_scaled_by_1_over_32768(channels: int) -> None:
    ints = np.array([0, 1, -1, 32767, -32768, 16384] * channels, "<i2")
    fmt = PcmFormat(PcmEncoding.S16LE, 16000, channels)
    out = pcm_to_float(ints.tobytes(), fmt, LIMITS)
    assert out.samples.dtype == np.float32 and out.samples.flags.c_contiguous
    assert out.samples.shape == (6, channels) and out.sample_rate == 16000
    np.testing.assert_array_equal(out.samples.ravel(), ints.astype(np.float32) / 32768)


def test_pcm_f32_passes_through() -> None:
    x = tone(8000, 0.1, 2)
    out = pcm_to_float(x.astype("<f4").tobytes(), PcmFormat(PcmEncoding.F32LE, 8000, 2), LIMITS)
    np.testing.assert_array_equal(out.samples, x)


def test_pcm_partial_frame_is_an_error_naming_the_sizes() -> None:
    fmt = PcmFormat(PcmEncoding.S16LE, 16000, 2)
    with pytest.raises(AudioError, match=r"4-byte frames, but 1001 bytes"):
        pcm_to_float(b"\x00" * 1001, fmt, LIMITS)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_pcm_f32_non_finite_is_an_error(bad: float) -> None:
    x = np.zeros(100, "<f4")
    x[37] = bad
    fmt = PcmFormat(PcmEncoding.F32LE, 16000)
    with pytest.raises(AudioError, match="NaN or infinite"):
        pcm_to_float(x.tobytes(), fmt, LIMITS)
    framer = PcmFramer(fmt)
    with pytest.raises(AudioError, match="NaN or infinite"):
        framer.push(x.tobytes())
    assert framer.frames_received == 0 and framer.bytes_received == 0  # state unchanged


def test_pcm_empty_and_limits() -> None:
    fmt = PcmFormat(PcmEncoding.S16LE, 16000)
    with pytest.raises(AudioError, match="empty"):
        pcm_to_float(b"", fmt, LIMITS)
    short = AudioLimits(max_duration_s=1.0)
    pcm_to_float(b"\x00\x00" * 16000, fmt, short)
    with pytest.raises(AudioLimitError) as e1:
        pcm_to_float(b"\x00\x00" * 16001, fmt, short)
    assert e1.value.limit == "duration"
    with pytest.raises(AudioLimitError) as e2:
        pcm_to_float(b"\x00" * 2000, fmt, AudioLimits(max_encoded_bytes=1000))
    assert e2.value.limit == "encoded_bytes"


@pytest.mark.parametrize(
    ("encoding", "channels"),
    [
        (PcmEncoding.S16LE, 1),
        (PcmEncoding.S16LE, 2),
        (PcmEncoding.F32LE, 1),
        (PcmEncoding.F32LE, 3),
    ],
)
def test_pcm_framer_rejoins_split_frames(encoding: PcmEncoding, channels: int) -> None:
    fmt = PcmFormat(encoding, 16000, channels)
    x = tone(16000, 0.05, channels)  # 800 frames: every split pattern below wraps many times
    data = s16_bytes(x) if encoding is PcmEncoding.S16LE else x.astype("<f4").tobytes()
    whole = to_mono(pcm_to_float(data, fmt, LIMITS).samples)
    rng = np.random.default_rng(7)
    for sizes in (
        [1],
        [3],
        [fmt.frame_bytes + 1],
        [7, 1, 13, 1000],
        list(rng.integers(1, 900, 50)),
    ):
        framer = PcmFramer(fmt)
        parts: list[F32] = []
        pos, i = 0, 0
        while pos < len(data):
            n = int(sizes[i % len(sizes)])
            chunk = data[pos : pos + n]
            out = framer.push(chunk)
            assert out.dtype == np.float32 and out.ndim == 1
            assert framer.pending_bytes == (pos + len(chunk)) % fmt.frame_bytes
            parts.append(out)
            pos += n
            i += 1
        framer.finish()
        assert framer.bytes_received == len(data)
        assert framer.frames_received == len(data) // fmt.frame_bytes
        np.testing.assert_allclose(np.concatenate(parts), whole, rtol=0, atol=1e-7)


def test_pcm_framer_accepts_memoryview_and_reports_an_unfinished_frame() -> None:
    framer = PcmFramer(PcmFormat(PcmEncoding.S16LE, 16000, 2))
    out = framer.push(memoryview(b"\x00\x40\x00\xc0\x01"))
    np.testing.assert_array_equal(out, np.array([0.0], np.float32))  # (0.5 + -0.5) / 2
    assert framer.pending_bytes == 1
    with pytest.raises(AudioError, match="1 bytes that are not a whole 4-byte frame"):
        framer.finish()


# ---- encoded files -------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize(
    ("fmt", "subtype"), [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")]
)
def test_round_trip(fmt: str, subtype: str, rate: int, channels: int) -> None:
    x = tone(rate, 0.5, channels, freq=rate / 40)
    got = decode_encoded(encode(x, rate, fmt, subtype), LIMITS)
    assert got.sample_rate == rate and got.channels == channels
    assert got.samples.dtype == np.float32 and got.samples.flags.c_contiguous
    if fmt == "OGG":  # lossy: same length, same waveform within the codec's error
        assert got.frames == len(x)
        err = np.sqrt(np.mean((got.samples - x) ** 2))
        assert err < 0.02, err
    else:
        np.testing.assert_allclose(got.samples, x, atol=1.5 / 32768)


def test_mp3_and_opus_decode() -> None:
    x = tone(48000, 1.0, 2, freq=1000)
    mp3 = decode_encoded(encode(x, 48000, "MP3", "MPEG_LAYER_III"), LIMITS)
    assert mp3.sample_rate == 48000 and mp3.channels == 2
    assert abs(mp3.frames - len(x)) < 48000 * 0.1
    opus = decode_encoded(encode(x, 48000, "OGG", "OPUS"), LIMITS)
    assert opus.sample_rate == 48000 and abs(opus.frames - len(x)) < 48000 * 0.1
    # the 1 kHz tone survives both codecs (a DFT bin per Hz over 1 s)
    for got in (mp3, opus):
        spectrum = np.abs(np.fft.rfft(got.samples[:48000, 0], n=48000))
        assert abs(int(np.argmax(spectrum)) - 1000) <= 2


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is not audio" * 10,
        bytes(range(256)) * 4,
        b"RIFF" + b"\x00" * 100,
        b"fLaC" + os.urandom(200),
        b"OggS" + os.urandom(200),
        b"ID3" + os.urandom(200),
    ],
)
def test_garbage_is_an_audio_error(data: bytes) -> None:
    with pytest.raises(AudioError, match="send WAV, FLAC, OGG or MP3") as e:
        decode_encoded(data, LIMITS)
    assert "0x" not in str(e.value)  # no object reprs from soundfile


def test_unsupported_container_is_refused() -> None:
    data = encode(tone(8000, 0.1), 8000, "VOC", "PCM_16")
    with pytest.raises(AudioError, match="container"):
        decode_encoded(data, LIMITS)


def test_empty_and_oversized_input() -> None:
    with pytest.raises(AudioError, match="empty"):
        decode_encoded(b"", LIMITS)
    data = encode(tone(16000, 0.5), 16000, "WAV", "PCM_16")
    with pytest.raises(AudioLimitError) as e:
        decode_encoded(data, AudioLimits(max_encoded_bytes=len(data) - 1))
    assert e.value.limit == "encoded_bytes"


def test_float_wav_with_nan_is_an_error() -> None:
    x = tone(8000, 0.1)
    x[10, 0] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        decode_encoded(encode(x, 8000, "WAV", "FLOAT"), LIMITS)


def _no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(f: object, out: F32) -> int:
        raise AssertionError("decoding started")

    monkeypatch.setattr(decode_module, "_read_into", refuse)


def test_too_many_channels_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(np.zeros((100, 9), np.float32), 16000, "WAV", "PCM_16")
    _no_decoding(monkeypatch)
    with pytest.raises(AudioLimitError, match="9 channels") as e:
        decode_encoded(data, LIMITS)
    assert e.value.limit == "channels"


def test_sample_rate_outside_limits_is_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = encode(np.zeros((100, 1), np.float32), 800, "WAV", "PCM_16")
    _no_decoding(monkeypatch)
    with pytest.raises(AudioLimitError, match="800 Hz") as e:
        decode_encoded(data, LIMITS)
    assert e.value.limit == "sample_rate"


def test_declared_duration_over_limit_is_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = encode(np.zeros((16000 * 3, 1), np.float32), 16000, "WAV", "PCM_16")
    _no_decoding(monkeypatch)
    with pytest.raises(AudioLimitError, match=r"header declares 3\.0 s") as e:
        decode_encoded(data, AudioLimits(max_duration_s=2.0))
    assert e.value.limit == "duration"


def test_decoded_bytes_limit() -> None:
    data = encode(np.zeros((48000, 8), np.float32), 48000, "FLAC", "PCM_16")
    with pytest.raises(AudioLimitError) as e:
        decode_encoded(data, AudioLimits(max_decoded_bytes=1_000_000))
    assert e.value.limit == "decoded_bytes"


@pytest.fixture(scope="module")
def long_flac() -> tuple[F32, bytes]:
    """3.3 s of 48 kHz stereo: several 64k-frame blocks and a partial last one."""
    x = tone(48000, 3.3, 2)
    return x, encode(x, 48000, "FLAC", "PCM_16")


def test_flac_claiming_2_to_the_36_frames_is_refused_quickly(long_flac: tuple[F32, bytes]) -> None:
    _, data = long_flac
    liar = flac_with_total_samples(data, (1 << 36) - 1)
    assert sf.info(io.BytesIO(liar)).frames == (1 << 36) - 1  # soundfile.read would allocate it
    started = time.monotonic()
    with pytest.raises(AudioLimitError, match="header declares") as e:
        decode_encoded(liar, LIMITS)
    assert e.value.limit == "duration"
    assert time.monotonic() - started < 1.0


def test_flac_claiming_too_many_frames_within_limits_decodes_only_real_frames(
    long_flac: tuple[F32, bytes],
) -> None:
    x, data = long_flac
    liar = flac_with_total_samples(data, len(x) * 10)  # 33 s: under the 600 s limit
    got = decode_encoded(liar, LIMITS)
    assert got.frames == len(x)
    np.testing.assert_allclose(got.samples, x, atol=1.5 / 32768)


def test_flac_claiming_fewer_frames_never_yields_more_than_it_holds(
    long_flac: tuple[F32, bytes],
) -> None:
    x, data = long_flac
    got = decode_encoded(flac_with_total_samples(data, 100_000), LIMITS)
    assert 100_000 <= got.frames <= len(x)
    np.testing.assert_allclose(got.samples, x[: got.frames], atol=1.5 / 32768)


def test_flac_of_unknown_length_decodes_every_frame(long_flac: tuple[F32, bytes]) -> None:
    x, data = long_flac
    unknown = flac_with_total_samples(data, 0)
    assert len(x) % decode_module._BLOCK_FRAMES != 0
    got = decode_encoded(unknown, LIMITS)
    assert got.frames == len(x)  # the last (partial) block is not lost
    np.testing.assert_allclose(got.samples, x, atol=1.5 / 32768)


def test_flac_of_unknown_length_over_the_limit_stops_while_decoding(
    long_flac: tuple[F32, bytes],
) -> None:
    _, data = long_flac
    with pytest.raises(AudioLimitError, match="holds at least") as e:
        decode_encoded(flac_with_total_samples(data, 0), AudioLimits(max_duration_s=2.0))
    assert e.value.limit == "duration"


def test_silence_bomb_is_bounded_by_the_limits() -> None:
    # 8 channels of 48 kHz silence compress to almost nothing
    data = encode(np.zeros((48000 * 20, 8), np.float32), 48000, "FLAC", "PCM_16")
    bomb = flac_with_total_samples(data, 0)
    assert len(bomb) < 100_000
    with pytest.raises(AudioLimitError) as e:
        decode_encoded(bomb, AudioLimits(max_duration_s=10.0))
    assert e.value.limit == "duration"


async def test_decode_encoded_async_uses_a_thread_without_a_pool() -> None:
    x = tone(16000, 0.5)
    got = await decode_encoded_async(encode(x, 16000, "FLAC", "PCM_16"), LIMITS)
    np.testing.assert_allclose(got.samples, x, atol=1.5 / 32768)
    with pytest.raises(AudioError):
        await decode_encoded_async(b"nonsense", LIMITS)


# ---- DecodePool ----------------------------------------------------------------------------


@pytest.fixture
async def pool() -> AsyncIterator[DecodePool]:
    async with DecodePool(workers=2, limits=AudioLimits(decode_timeout_s=5.0)) as p:
        yield p


def _gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True


async def test_pool_decodes_like_decode_encoded(pool: DecodePool) -> None:
    x = tone(44100, 2.0, 2)
    data = encode(x, 44100, "FLAC", "PCM_16")
    results = await asyncio.gather(*(pool.decode(data) for _ in range(5)))
    expected = decode_encoded(data, LIMITS)
    for got in results:
        assert got.sample_rate == 44100
        np.testing.assert_array_equal(got.samples, expected.samples)
    small = await decode_encoded_async(encode(x[:100], 44100, "WAV"), LIMITS, pool=pool)
    assert small.frames == 100


async def test_pool_reports_caller_errors_and_keeps_its_workers(pool: DecodePool) -> None:
    pids = pool.worker_pids
    with pytest.raises(AudioError, match="could not decode"):
        await pool.decode(b"RIFF" + b"\x01" * 300)
    with pytest.raises(AudioLimitError) as e:
        await pool.decode(encode(np.zeros((10, 9), np.float32), 8000, "WAV"))
    assert e.value.limit == "channels"
    with pytest.raises(AudioError, match="empty"):
        await pool.decode(b"")
    assert pool.worker_pids == pids


async def test_pool_kills_a_hung_worker_and_keeps_serving() -> None:
    data = encode(tone(16000, 0.5), 16000, "WAV", "PCM_16")
    async with DecodePool(workers=1, limits=AudioLimits(decode_timeout_s=0.5)) as pool:
        before = pool.worker_pids
        pool._fault = "hang"  # the worker sleeps after accepting, as a stuck libsndfile would
        started = time.monotonic()
        with pytest.raises(AudioLimitError, match=r"longer than the limit of 0\.5 s") as e:
            await pool.decode(data)
        assert e.value.limit == "decode_timeout"
        assert 0.4 < time.monotonic() - started < 3.0
        pool._fault = None
        got = await pool.decode(data)
        assert got.frames == 8000
        assert pool.worker_pids != before
        assert _gone(before)


async def test_pool_survives_a_crashing_worker(pool: DecodePool) -> None:
    data = encode(tone(16000, 0.5), 16000, "WAV", "PCM_16")
    pool._fault = "crash"  # SIGSEGV after accepting the job
    with pytest.raises(AudioError, match=r"could not decode the audio: .*exit code -11"):
        await pool.decode(data)
    pool._fault = None
    results = await asyncio.gather(*(pool.decode(data) for _ in range(4)))
    assert all(r.frames == 8000 for r in results)
    # the replacement joins once it has started
    await wait_for(lambda: len(pool.worker_pids) == 2, what="a replacement worker joined")


async def test_pool_times_out_a_real_slow_decode(pool: DecodePool) -> None:
    x = tone(48000, 60.0, 2)
    data = encode(x, 48000, "FLAC", "PCM_16")
    with pytest.raises(AudioLimitError) as e:
        await pool.decode(data, AudioLimits(decode_timeout_s=0.002))
    assert e.value.limit == "decode_timeout"
    got = await pool.decode(data)  # and then serves normally
    assert got.frames == len(x)


async def test_pool_replaces_a_worker_that_died_while_idle(pool: DecodePool) -> None:
    data = encode(tone(16000, 0.1), 16000, "WAV", "PCM_16")
    await asyncio.gather(pool.decode(data), pool.decode(data))  # both workers up
    victims = pool.worker_pids
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    await wait_for(lambda: not any(map(alive, victims)), what="the killed workers are dead")
    got = await pool.decode(data)  # not the caller's fault: retried on a fresh worker
    assert got.frames == 1600
    assert not set(victims) & set(pool.worker_pids)


async def test_pool_close_stops_workers_and_refuses_work() -> None:
    data = encode(tone(16000, 0.1), 16000, "WAV", "PCM_16")
    p = DecodePool(workers=2)
    with pytest.raises(RuntimeError):
        await p.decode(data)
    async with p:
        pids = p.worker_pids
        assert len(pids) == 2
        p._fault = "hang"
        inflight = asyncio.create_task(p.decode(data))
        await wait_for(lambda: len(p._busy) == 1, what="the decode is in a worker")
    with pytest.raises(RuntimeError, match="closed"):
        await inflight
    assert _gone(pids)
    with pytest.raises(RuntimeError):
        await p.decode(data)


# ---- downmix and resampling ----------------------------------------------------------------


def test_to_mono() -> None:
    x = np.array([[1.0, 0.0], [0.5, -0.5], [0.25, 0.75]], np.float32)
    np.testing.assert_array_equal(to_mono(x), np.array([0.5, 0.0, 0.5], np.float32))
    one = x[:, :1].copy()
    m = to_mono(one)
    assert m.shape == (3,) and m.dtype == np.float32 and m.flags.c_contiguous
    assert to_mono(np.arange(4, dtype=np.float64)).dtype == np.float32


@pytest.mark.parametrize(("src", "dst"), [(48000, 16000), (44100, 16000), (8000, 16000)])
def test_resample_length_and_tone(src: int, dst: int) -> None:
    x = tone(src, 1.0)[:, 0]
    y = resample(x, src, dst)
    assert y.dtype == np.float32 and len(y) == round(len(x) * dst / src)
    ref = tone(dst, 1.0)[:, 0]
    assert float(np.max(np.abs(y[200:-200] - ref[200:-200]))) < 1e-3


def test_resample_identity() -> None:
    x = tone(16000, 0.1)[:, 0]
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)
    with pytest.raises(ValueError):
        resample(x, 0, 16000)


def _stream(rs: StreamResampler, x: F32, sizes: list[int]) -> F32:
    parts: list[F32] = []
    pos, i = 0, 0
    while pos < len(x):
        n = sizes[i % len(sizes)]
        parts.append(rs.process(x[pos : pos + n]))
        pos += n
        i += 1
    parts.append(rs.flush())
    return np.concatenate(parts)


@pytest.mark.parametrize(("src", "dst"), [(48000, 16000), (44100, 16000), (8000, 16000)])
def test_stream_resampler_matches_one_shot(src: int, dst: int) -> None:
    x = tone(src, 1.5)[:, 0]
    one_shot = resample(x, src, dst)
    rng = np.random.default_rng(3)
    for sizes in ([1], [160], [src // 10], [4096], [17, 1000, 3], list(rng.integers(1, 5000, 40))):
        rs = StreamResampler(src, dst)
        y = _stream(rs, x, [int(s) for s in sizes])
        assert abs(len(y) - len(one_shot)) <= 2, (sizes[:3], len(y), len(one_shot))
        assert rs.samples_in == len(x) and rs.samples_out == len(y)
        assert delay_between(one_shot, y) == 0
        n = min(len(y), len(one_shot))
        assert float(np.max(np.abs(y[:n] - one_shot[:n]))) < 1e-4


def test_stream_resampler_is_not_delayed_against_the_input_tone() -> None:
    x = tone(48000, 1.0)[:, 0]
    y = _stream(StreamResampler(48000, 16000), x, [4800])
    ref = tone(16000, 1.0)[:, 0]
    assert abs(delay_between(ref, y)) <= 1


def test_stream_resampler_identity_and_misuse() -> None:
    rs = StreamResampler(16000, 16000)
    x = tone(16000, 0.01)[:, 0]
    np.testing.assert_array_equal(rs.process(x), x)
    assert rs.flush().size == 0
    with pytest.raises(RuntimeError):
        rs.process(x)
    rs2 = StreamResampler(48000, 16000)
    rs2.process(tone(48000, 0.1)[:, 0])
    assert rs2.flush().size > 0
    assert rs2.flush().size == 0
    with pytest.raises(ValueError):
        StreamResampler(16000, -1)


# ---- windows -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "window", "hop", "expected"),
    [
        (0, 400, 160, [0]),
        (100, 400, 160, [0]),  # shorter than a window: one padded window
        (400, 400, 160, [0]),  # exactly one window
        (401, 400, 160, [0, 1]),  # tail of one sample: a window aligned to the end
        (720, 400, 160, [0, 160, 320]),  # windows end exactly at the clip's end
        (800, 400, 160, [0, 160, 320, 400]),
        (1000, 400, 400, [0, 400, 600]),
        (1000, 0, 160, [0]),  # window 0: the whole clip
        (1000, 100, 300, [0, 300, 600, 900]),  # hop > window leaves gaps, the end is covered
    ],
)
def test_window_starts(n: int, window: int, hop: int, expected: list[int]) -> None:
    starts = window_starts(n, window, hop)
    assert starts == expected
    if 0 < window <= n:
        assert starts[-1] + window == n or starts[-1] + window <= n
        assert max(starts) + window >= n  # the last sample is covered


def test_window_starts_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        window_starts(1000, 400, 0)
    with pytest.raises(ValueError):
        window_starts(1000, -1, 160)


def test_frame_windows() -> None:
    x = np.arange(1000, dtype=np.float32)
    w, starts = frame_windows(x, 400, 300)
    assert starts == [0, 300, 600]
    assert w.shape == (3, 400) and w.dtype == np.float32 and w.flags.c_contiguous
    for row, s in zip(w, starts, strict=True):
        np.testing.assert_array_equal(row, x[s : s + 400])

    short, starts = frame_windows(x[:10], 16, 8)
    assert starts == [0] and short.shape == (1, 16)
    np.testing.assert_array_equal(short[0, :10], x[:10])
    assert not short[0, 10:].any()

    whole, starts = frame_windows(x, 0, 0)
    assert starts == [0] and whole.shape == (1, 1000)
    np.testing.assert_array_equal(whole[0], x)

    exact, starts = frame_windows(x[:400], 400, 160)
    assert starts == [0] and exact.shape == (1, 400)
