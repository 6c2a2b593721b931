"""Safe decoding of encoded files (WAV, FLAC, OGG, MP3, ...) with libsndfile. Blocking.

Files are sniffed for a supported container, opened with libsndfile, checked against the caps
from the header *before* decoding, then decoded in bounded blocks until libsndfile returns no
more frames, counting what was really decoded (a header can lie in both directions, and an
unknown-length FLAC must be read to its end). `decode_pool` runs this in worker processes.
"""

from __future__ import annotations

import io
import time
from typing import Final

import numpy as np
import soundfile as sf

from tritone_server.audio.formats import AudioLimits, Bytes, DecodedAudio, Float32Array, nbytes
from tritone_server.errors import AudioError, AudioLimitError

__all__ = ["HINT", "SUPPORTED_CONTAINERS", "decode_encoded", "sniff"]

#: libsndfile major formats `decode_encoded` accepts; anything else is refused after the header.
SUPPORTED_CONTAINERS: Final = frozenset(
    {"WAV", "WAVEX", "RF64", "W64", "AIFF", "AU", "CAF", "FLAC", "OGG", "MP3"}
)

HINT: Final = "send WAV, FLAC, OGG or MP3, or raw PCM with its format"

# First bytes of the containers above. Only these reach libsndfile's header parsers, so a
# caller cannot steer it into one of its thirty rarely used formats.
_MAGIC: Final = (b"RIFF", b"RIFX", b"RF64", b"riff", b"FORM", b".snd", b"caff", b"fLaC", b"OggS")
_ID3: Final = b"ID3"

# Frames decoded per libsndfile call: bounds the work between two limit checks.
_BLOCK_FRAMES: Final = 65536
# libsndfile's SF_COUNT_MAX: the frame count it reports when a header says "unknown".
_SF_COUNT_MAX: Final = 2**63 - 1


def sniff(data: Bytes) -> None:
    """Refuse bytes that start like none of the supported containers."""
    head = bytes(data[:4])
    if head in _MAGIC or head.startswith(_ID3):
        return
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio frame sync
        return
    raise AudioError(f"the audio is not in a recognised container; {HINT}")


class _SeekSafeBytesIO(io.BytesIO):
    """BytesIO whose seek never raises: libsndfile's parsers seek to wherever a corrupt
    header points (negative or beyond 2**63), and an exception inside soundfile's cffi
    callback would only be printed as "Exception ignored" and the seek reported as 0."""

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        try:
            return super().seek(offset, whence)
        except (ValueError, OverflowError):
            return self.tell()


def _decode_failure(exc: BaseException) -> AudioError:
    reason = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
    reason = reason.strip().rstrip(".")
    reason = reason[:1].lower() + reason[1:]
    return AudioError(f"could not decode the audio: {reason}; {HINT}")


def _read_into(f: sf.SoundFile, out: Float32Array) -> int:
    """Decode up to len(out) frames into `out` (C-contiguous float32 [n, channels]).

    Calls libsndfile directly: `SoundFile.read()` clamps to the header's frame count and then
    seeks, which fails on unknown-length FLAC and would trust a header we do not trust.
    """
    ptr = sf._ffi.cast("float *", out.ctypes.data)
    got = int(sf._snd.sf_readf_float(f._file, ptr, out.shape[0]))
    err = int(sf._snd.sf_error(f._file))
    if err:
        raise sf.LibsndfileError(err)
    return got


def decode_encoded(data: Bytes, limits: AudioLimits) -> DecodedAudio:
    """Decode an encoded file (WAV, FLAC, OGG, MP3, ...) safely. Blocking.

    Checks size and container, then rate, channels and declared length from the header
    before decoding; decodes in blocks until libsndfile returns no more frames, stopping
    with AudioLimitError as soon as the decoded length or the time spent exceeds the caps.
    Every libsndfile failure becomes an AudioError.
    """
    started = time.monotonic()
    limits.check_encoded_size(nbytes(data))
    sniff(data)
    try:
        with sf.SoundFile(_SeekSafeBytesIO(data)) as f:
            return _decode_open(f, limits, started)
    except AudioError:
        raise
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError, OSError, EOFError) as exc:
        raise _decode_failure(exc) from exc


def _decode_open(f: sf.SoundFile, limits: AudioLimits, started: float) -> DecodedAudio:
    container = str(f.format)
    if container not in SUPPORTED_CONTAINERS:
        raise AudioError(f"the {container} container is not supported; {HINT}")
    rate = int(f.samplerate)
    channels = int(f.channels)
    if rate <= 0 or channels <= 0:
        raise AudioError(
            f"could not decode the audio: its header declares {rate} Hz and {channels} "
            f"channels; {HINT}"
        )
    limits.check_sample_rate(rate)
    limits.check_channels(channels)
    cap, _ = limits.max_frames(rate, channels)
    declared = int(f.frames)
    known = 0 < declared < _SF_COUNT_MAX
    if known:
        limits.check_frames(declared, rate, channels, declared=True)

    # Decode straight into preallocated buffers: the first sized by the header (capped, and
    # never trusted), later ones growing geometrically if the file holds more than it said.
    capacity = min(declared, cap) + 1 if known else min(cap + 1, max(_BLOCK_FRAMES, rate * 10))
    full: list[Float32Array] = []
    buf: Float32Array = np.empty((capacity, channels), dtype=np.float32)
    filled = 0
    total = 0
    while True:
        if filled == buf.shape[0]:
            full.append(buf)
            buf = np.empty((min(cap + 1 - total, total) or 1, channels), dtype=np.float32)
            filled = 0
        want = min(_BLOCK_FRAMES, buf.shape[0] - filled)
        got = _read_into(f, buf[filled : filled + want])
        if got <= 0:
            break
        filled += got
        total += got
        limits.check_frames(total, rate, channels, declared=False)
        if time.monotonic() - started > limits.decode_timeout_s:
            raise AudioLimitError(
                f"decoding the audio took longer than the limit of {limits.decode_timeout_s:g} s",
                limit="decode_timeout",
            )
    if total == 0:
        raise AudioError(f"the audio file contains no audio frames; {HINT}")
    if not full:
        samples = buf[:filled]
        if filled < buf.shape[0] // 2:
            samples = samples.copy()  # do not keep a much larger buffer alive
    else:
        samples = np.concatenate([*full, buf[:filled]])
    if not np.isfinite(samples).all():  # float WAVs carry whatever the sender wrote
        raise AudioError("the audio contains NaN or infinite samples")
    return DecodedAudio(samples, rate)
