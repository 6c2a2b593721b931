"""How caller audio (paths, bytes, numpy arrays, RawPcm, stream chunks) becomes bytes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tritone.errors import invalid_argument
from tritone.types import AudioChunk, AudioInput, PcmEncoding, RawPcm
from tritone_protos import audio_classification_pb2 as pb

_PB_ENCODING = {
    PcmEncoding.S16LE: pb.PCM_S16LE,
    PcmEncoding.F32LE: pb.PCM_F32LE,
}


def encoding_to_proto(encoding: PcmEncoding) -> pb.PcmEncoding:
    if not isinstance(encoding, PcmEncoding):
        raise invalid_argument(f"encoding must be a PcmEncoding, got {encoding!r}")
    return _PB_ENCODING[encoding]


def check_sample_rate(sample_rate: object) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise invalid_argument(f"sample_rate must be a positive int (Hz), got {sample_rate!r}")
    return sample_rate


def check_channels(channels: object) -> int:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
        raise invalid_argument(f"channels must be a positive int, got {channels!r}")
    return channels


def _array_encoding(array: npt.NDArray[Any]) -> PcmEncoding:
    if np.issubdtype(array.dtype, np.floating):
        return PcmEncoding.F32LE
    if array.dtype == np.int16:
        return PcmEncoding.S16LE
    raise invalid_argument(
        f"audio arrays must hold floats in [-1, 1] or int16 samples, got dtype {array.dtype}"
    )


def _array_channels(array: npt.NDArray[Any]) -> int:
    if array.ndim == 1:
        return 1
    if array.ndim == 2:
        if array.shape[1] == 0:
            raise invalid_argument("audio array has 0 channels: expected shape [frames, channels]")
        return int(array.shape[1])
    raise invalid_argument(
        f"audio arrays must be 1-D (mono) or 2-D [frames, channels], got shape {array.shape}"
    )


def encode_array(array: npt.NDArray[Any], encoding: PcmEncoding) -> bytes:
    """Samples as interleaved PCM bytes in `encoding`, converting int16 <-> float."""
    kind = _array_encoding(array)
    if encoding is PcmEncoding.F32LE:
        if kind is PcmEncoding.S16LE:
            return (array.astype("<f4") / np.float32(32768.0)).astype("<f4").tobytes()
        return array.astype("<f4", copy=False).tobytes()
    if kind is PcmEncoding.F32LE:
        scaled = np.clip(np.nan_to_num(array, nan=0.0), -1.0, 1.0) * 32767.0
        pcm: bytes = np.rint(scaled).astype("<i2").tobytes()
        return pcm
    return array.astype("<i2", copy=False).tobytes()


def raw_from_array(array: npt.NDArray[Any], sample_rate: int | None) -> RawPcm:
    """A numpy clip as RawPcm: floats become f32le, int16 stays s16le."""
    if sample_rate is None:
        raise invalid_argument("sample_rate is required when audio is a numpy array")
    rate = check_sample_rate(sample_rate)
    encoding = _array_encoding(array)
    channels = _array_channels(array)
    if array.shape[0] == 0:
        raise invalid_argument("audio array is empty")
    return RawPcm(encode_array(array, encoding), rate, encoding, channels)


def raw_message(raw: RawPcm) -> pb.Audio:
    rate = check_sample_rate(raw.sample_rate)
    channels = check_channels(raw.channels)
    frame_bytes = raw.encoding.sample_bytes * channels
    data = bytes(raw.data)
    if not data:
        raise invalid_argument("RawPcm.data is empty")
    if len(data) % frame_bytes:
        raise invalid_argument(
            f"RawPcm.data has {len(data)} bytes, not a whole number of "
            f"{frame_bytes}-byte frames ({raw.encoding.value}, {channels} channel(s))"
        )
    fmt = pb.PcmFormat(
        encoding=encoding_to_proto(raw.encoding), sample_rate=rate, channels=channels
    )
    return pb.Audio(raw=pb.RawAudio(format=fmt, data=data))


def _encoded_message(data: bytes) -> pb.Audio:
    if not data:
        raise invalid_argument("audio is empty: expected the bytes of an encoded file")
    return pb.Audio(encoded=data)


def _read_file(path: str | os.PathLike[str]) -> bytes:
    return Path(path).read_bytes()


async def audio_message(audio: AudioInput, sample_rate: int | None) -> pb.Audio:
    """The `Audio` message for a `classify()` input; files are read in a thread.

    Raises InvalidArgumentError for inputs that cannot be sent, and OSError when a path
    cannot be read.
    """
    if isinstance(audio, np.ndarray):
        return raw_message(raw_from_array(audio, sample_rate))
    if sample_rate is not None and not (
        isinstance(audio, RawPcm) and sample_rate == audio.sample_rate
    ):
        raise invalid_argument(
            "sample_rate applies only to numpy arrays: encoded files declare their own "
            "rate and RawPcm carries it"
        )
    if isinstance(audio, RawPcm):
        return raw_message(audio)
    if isinstance(audio, bytes | bytearray | memoryview):
        return _encoded_message(bytes(audio))
    if isinstance(audio, str | os.PathLike):
        return _encoded_message(await asyncio.to_thread(_read_file, audio))
    raise invalid_argument(
        "audio must be a path, the bytes of an encoded file, a numpy array or RawPcm, "
        f"not {type(audio).__name__}"
    )


def chunk_bytes(chunk: AudioChunk, encoding: PcmEncoding, channels: int) -> bytes:
    """One stream chunk as PCM bytes in the stream's encoding.

    Bytes are passed through as they are (they may split frames; the server rejoins them).
    Arrays are converted to `encoding` and must have `channels` columns (1-D means mono).
    """
    if isinstance(chunk, bytes | bytearray | memoryview):
        return bytes(chunk)
    if isinstance(chunk, np.ndarray):
        got = _array_channels(chunk)
        if got != channels:
            raise invalid_argument(
                f"chunk has {got} channel(s) (shape {chunk.shape}) but the stream was "
                f"opened with channels={channels}"
            )
        return encode_array(chunk, encoding)
    raise invalid_argument(f"a chunk must be bytes or a numpy array, not {type(chunk).__name__}")
