"""Audio prepared once for a model: mono float32 at the model's rate, from any clip.

The DataPlane calls this once per clip; what comes back is what the model's windows are cut
from. The cheapest safe path is taken for each input:
- raw PCM, and plain PCM WAV files (`wav.plain_wav`: a bounded header parse), are converted
  in this process with numpy on the bytes (off the event loop when long);
- any other file is decoded, downmixed and resampled in a decode worker process
  (`DecodePool.prepare`), so only mono samples at the model's rate cross the process
  boundary; without a pool, in a thread.
"""

from __future__ import annotations

import asyncio
from typing import Final

from tritone_server.audio.decode import decode_encoded
from tritone_server.audio.decode_pool import DecodePool
from tritone_server.audio.dsp import resample, to_mono
from tritone_server.audio.formats import (
    AudioLimits,
    Bytes,
    PcmFormat,
    PreparedAudio,
    nbytes,
    pcm_to_mono,
)
from tritone_server.audio.wav import plain_wav

__all__ = ["prepare_encoded_async", "prepare_pcm_async"]

# Below this many samples, converting on the event loop costs less than a thread hop.
_INLINE_SAMPLES: Final = 48_000


async def prepare_encoded_async(
    data: Bytes, to_rate: int, limits: AudioLimits, *, pool: DecodePool | None = None
) -> PreparedAudio:
    """An encoded file as mono at `to_rate`: a plain PCM WAV in this process (a bounded
    header parse and `numpy.frombuffer`), anything else decoded, downmixed and resampled in
    `pool` (or, without a pool, in a thread)."""
    limits.check_encoded_size(nbytes(data))
    wav = plain_wav(data)
    if wav is not None:
        return await prepare_pcm_async(
            memoryview(data).cast("B")[wav.offset : wav.end],
            wav.format,
            to_rate,
            limits,
            declared=True,
        )
    if pool is not None:
        return await pool.prepare(data, to_rate, limits)

    def in_thread() -> PreparedAudio:
        audio = decode_encoded(data, limits)
        mono = resample(to_mono(audio.samples), audio.sample_rate, to_rate)
        return PreparedAudio(mono, to_rate, audio.frames, audio.sample_rate, audio.channels)

    return await asyncio.to_thread(in_thread)


async def prepare_pcm_async(
    data: Bytes, fmt: PcmFormat, to_rate: int, limits: AudioLimits, *, declared: bool = False
) -> PreparedAudio:
    """Raw PCM as mono at `to_rate`; long clips are converted off the event loop.

    ``declared``: the bytes are a WAV file's data chunk, so a clip over the caps is refused
    with the sentence libsndfile's path gives (the header declares its length)."""
    if declared:
        fmt.validate(limits)
        frames = nbytes(data) // fmt.frame_bytes
        limits.check_frames(frames, fmt.sample_rate, fmt.channels, declared=True)

    def convert() -> PreparedAudio:
        mono = pcm_to_mono(data, fmt, limits)
        frames = int(mono.shape[0])
        out = resample(mono, fmt.sample_rate, to_rate)
        return PreparedAudio(out, to_rate, frames, fmt.sample_rate, fmt.channels)

    if nbytes(data) // fmt.encoding.bytes_per_sample <= _INLINE_SAMPLES:
        return convert()
    return await asyncio.to_thread(convert)
