"""Plain PCM WAV found by a bounded header parse: the in-process fast path for files.

Most clips callers send are RIFF/WAVE files of 16-bit integer or 32-bit float samples. Their
samples are raw PCM after a few dozen header bytes, so `numpy.frombuffer` reads them in the
gateway with no worker-process round trip. Anything else (compressed formats, RIFX, RF64,
8/24-bit samples, odd or truncated chunks, a data chunk that is not whole frames) is not
"plain" and goes to libsndfile in a decode worker as before, so its errors and results are
unchanged.

The parse reads at most `_MAX_CHUNKS` chunk headers, never trusts a size past the end of the
bytes it was given, and allocates nothing before the caps in `AudioLimits` are checked.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from tritone_server.audio.formats import Bytes, PcmEncoding, PcmFormat, nbytes

__all__ = ["PlainWav", "plain_wav"]

_RIFF_HEADER: Final = struct.Struct("<4sI4s")
_CHUNK_HEADER: Final = struct.Struct("<4sI")
_FMT: Final = struct.Struct("<HHIIHH")
_EXTENSIBLE: Final = 0xFFFE
_PCM: Final = 1
_IEEE_FLOAT: Final = 3
# The GUID tail every WAVE_FORMAT_EXTENSIBLE sub-format shares after its 2-byte format tag.
_GUID_TAIL: Final = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_MAX_CHUNKS: Final = 32


@dataclass(frozen=True, slots=True)
class PlainWav:
    """Where the samples of a plain WAV are and how they are encoded."""

    format: PcmFormat
    offset: int
    frames: int

    @property
    def end(self) -> int:
        return self.offset + self.frames * self.format.frame_bytes


def _encoding(tag: int, bits: int, block_align: int, channels: int) -> PcmEncoding | None:
    if tag == _PCM and bits == 16:
        encoding = PcmEncoding.S16LE
    elif tag == _IEEE_FLOAT and bits == 32:
        encoding = PcmEncoding.F32LE
    else:
        return None
    if block_align != encoding.bytes_per_sample * channels:
        return None
    return encoding


def _fmt_chunk(body: bytes) -> tuple[PcmEncoding, int, int] | None:
    """(encoding, rate, channels) of a `fmt ` chunk that describes plain samples."""
    if len(body) < _FMT.size:
        return None
    tag, channels, rate, _, block_align, bits = _FMT.unpack_from(body)
    if tag == _EXTENSIBLE:
        # cbSize(2) validBits(2) channelMask(4) subFormat GUID(16)
        if len(body) < _FMT.size + 24:
            return None
        valid_bits = struct.unpack_from("<H", body, _FMT.size + 2)[0]
        guid = body[_FMT.size + 8 : _FMT.size + 24]
        if guid[2:] != _GUID_TAIL or valid_bits != bits:
            return None
        tag = struct.unpack_from("<H", guid)[0]
    if channels < 1 or rate < 1:
        return None
    encoding = _encoding(tag, bits, block_align, channels)
    return None if encoding is None else (encoding, rate, channels)


def plain_wav(data: Bytes) -> PlainWav | None:
    """The layout of `data` if it is a plain little-endian PCM WAV (16-bit int or 32-bit
    float) whose data chunk is whole frames and wholly present; None otherwise."""
    size = nbytes(data)
    view = memoryview(data).cast("B") if isinstance(data, memoryview) else data
    if size < _RIFF_HEADER.size:
        return None
    riff, _, wave = _RIFF_HEADER.unpack_from(view)
    if riff != b"RIFF" or wave != b"WAVE":
        return None
    pos = _RIFF_HEADER.size
    found: tuple[PcmEncoding, int, int] | None = None
    for _ in range(_MAX_CHUNKS):
        if pos + _CHUNK_HEADER.size > size:
            return None
        name, length = _CHUNK_HEADER.unpack_from(view, pos)
        body_at = pos + _CHUNK_HEADER.size
        if body_at + length > size:
            return None  # a chunk that claims more than was sent: libsndfile decides
        if name == b"fmt ":
            if found is not None:
                return None
            found = _fmt_chunk(bytes(view[body_at : body_at + min(length, 64)]))
            if found is None:
                return None
        elif name == b"data":
            if found is None:
                return None
            encoding, rate, channels = found
            fmt = PcmFormat(encoding, rate, channels)
            frames, rest = divmod(length, fmt.frame_bytes)
            if rest or frames == 0:
                return None
            return PlainWav(fmt, body_at, frames)
        pos = body_at + length + (length & 1)  # chunks are padded to even sizes
    return None
