"""All audio handling of the gateway: decoding, PCM conversion, downmix, resampling, windows.

Every byte a caller sends is untrusted (shared/DESIGN.md, "Untrusted audio"):

- raw PCM (`pcm_to_float`, `PcmFramer`) is plain numpy on bytes and is the fast path for
  streams; it checks whole frames, finite floats and the configured caps;
- encoded files (`decode_encoded`) are sniffed for a supported container, opened with
  libsndfile, checked against the caps from the header *before* decoding, then decoded in
  bounded blocks until libsndfile returns no more frames, counting what was really decoded
  (a header can lie in both directions, and an unknown-length FLAC must be read to its end);
- `DecodePool` runs `decode_encoded` in worker processes, so a decoder that hangs is killed
  at `AudioLimits.decode_timeout_s` and one that crashes costs one request, not the gateway.

Errors::

    ValueError
     └── AudioError           bad audio from the caller; the message is a sentence naming what
          │                    was wrong (the gateway sends it with INVALID_ARGUMENT)
          └── AudioLimitError  the audio exceeds a configured limit; `limit` names which one

No function here loops over samples in Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import io
import json
import logging
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from tritone_server import _decode_worker as _wire

__all__ = [
    "SUPPORTED_CONTAINERS",
    "AudioError",
    "AudioLimitError",
    "AudioLimits",
    "DecodePool",
    "DecodedAudio",
    "PcmEncoding",
    "PcmFormat",
    "PcmFramer",
    "StreamResampler",
    "decode_encoded",
    "decode_encoded_async",
    "frame_windows",
    "pcm_to_float",
    "resample",
    "to_mono",
    "window_starts",
]

_log = logging.getLogger(__name__)

Float32Array: TypeAlias = npt.NDArray[np.float32]
#: what the decoding functions accept as bytes
Bytes: TypeAlias = bytes | bytearray | memoryview

#: libsndfile major formats `decode_encoded` accepts; anything else is refused after the header.
SUPPORTED_CONTAINERS: Final = frozenset(
    {"WAV", "WAVEX", "RF64", "W64", "AIFF", "AU", "CAF", "FLAC", "OGG", "MP3"}
)

_HINT: Final = "send WAV, FLAC, OGG or MP3, or raw PCM with its format"

# First bytes of the containers above. Only these reach libsndfile's header parsers, so a
# caller cannot steer it into one of its thirty rarely used formats.
_MAGIC: Final = (b"RIFF", b"RIFX", b"RF64", b"riff", b"FORM", b".snd", b"caff", b"fLaC", b"OggS")
_ID3: Final = b"ID3"

# Frames decoded per libsndfile call: bounds the work between two limit checks.
_BLOCK_FRAMES: Final = 65536
# libsndfile's SF_COUNT_MAX: the frame count it reports when a header says "unknown".
_SF_COUNT_MAX: Final = 2**63 - 1
_S16_SCALE: Final = np.float32(1.0 / 32768.0)


# --------------------------------------------------------------------------------------------
# Errors and limits
# --------------------------------------------------------------------------------------------


class AudioError(ValueError):
    """The caller's audio cannot be used; the message is a sentence naming what was wrong."""


class AudioLimitError(AudioError):
    """The audio exceeds a configured limit.

    `limit` names it: "duration", "channels", "sample_rate", "encoded_bytes",
    "decoded_bytes" or "decode_timeout".
    """

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit

    def __reduce__(self) -> tuple[object, ...]:
        return (_limit_error, (str(self), self.limit))


def _limit_error(message: str, limit: str) -> AudioLimitError:
    return AudioLimitError(message, limit=limit)


@dataclass(frozen=True, slots=True)
class AudioLimits:
    """Caps applied to every clip and stream."""

    max_duration_s: float = 600.0
    max_channels: int = 8
    min_sample_rate: int = 1000
    max_sample_rate: int = 384000
    #: size of an encoded file or of a raw PCM clip as received
    max_encoded_bytes: int = 64 * 1024 * 1024
    decode_timeout_s: float = 30.0
    #: size of the decoded float32 samples (all channels); bounds decompression bombs whose
    #: duration is within `max_duration_s` but whose rate and channels are at the maximum
    max_decoded_bytes: int = 512 * 1024 * 1024

    def __post_init__(self) -> None:
        if not (self.max_duration_s > 0 and math.isfinite(self.max_duration_s)):
            raise ValueError("max_duration_s must be a positive number of seconds")
        if self.max_channels < 1:
            raise ValueError("max_channels must be at least 1")
        if not 0 < self.min_sample_rate <= self.max_sample_rate:
            raise ValueError("need 0 < min_sample_rate <= max_sample_rate")
        if self.max_encoded_bytes < 1 or self.max_decoded_bytes < 1:
            raise ValueError("byte limits must be positive")
        if not self.decode_timeout_s > 0:
            raise ValueError("decode_timeout_s must be positive")

    def max_frames(self, sample_rate: int, channels: int) -> tuple[int, str]:
        """The most frames a clip at this rate and channel count may hold, and which limit
        sets it ("duration" or "decoded_bytes")."""
        by_duration = math.floor(self.max_duration_s * sample_rate)
        by_bytes = self.max_decoded_bytes // (4 * channels)
        if by_bytes < by_duration:
            return by_bytes, "decoded_bytes"
        return by_duration, "duration"

    def check_sample_rate(self, sample_rate: int) -> None:
        if not self.min_sample_rate <= sample_rate <= self.max_sample_rate:
            raise AudioLimitError(
                f"the audio's sample rate of {sample_rate} Hz is outside the supported range "
                f"of {self.min_sample_rate} to {self.max_sample_rate} Hz",
                limit="sample_rate",
            )

    def check_channels(self, channels: int) -> None:
        if channels > self.max_channels:
            raise AudioLimitError(
                f"the audio has {channels} channels, more than the limit of {self.max_channels}",
                limit="channels",
            )

    def check_encoded_size(self, size: int, what: str = "audio") -> None:
        if size == 0:
            raise AudioError(f"the {what} is empty: the request carried 0 bytes")
        if size > self.max_encoded_bytes:
            raise AudioLimitError(
                f"the {what} is {size} bytes, more than the limit of "
                f"{self.max_encoded_bytes} bytes",
                limit="encoded_bytes",
            )

    def check_frames(self, frames: int, sample_rate: int, channels: int, *, declared: bool) -> None:
        cap, which = self.max_frames(sample_rate, channels)
        if frames <= cap:
            return
        how = "its header declares" if declared else "it holds at least"
        if which == "duration":
            raise AudioLimitError(
                f"the audio is longer than the limit of {self.max_duration_s:g} s "
                f"({how} {frames / sample_rate:.1f} s)",
                limit="duration",
            )
        raise AudioLimitError(
            f"the audio decodes to more than the limit of {self.max_decoded_bytes} bytes "
            f"({how} {frames} frames of {channels} channels)",
            limit="decoded_bytes",
        )


# --------------------------------------------------------------------------------------------
# Formats and decoded audio
# --------------------------------------------------------------------------------------------


class PcmEncoding(enum.Enum):
    """Sample encodings accepted as raw PCM (little-endian, interleaved)."""

    S16LE = "s16le"
    F32LE = "f32le"

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self is PcmEncoding.S16LE else 4

    @property
    def dtype(self) -> np.dtype[np.int16] | np.dtype[np.float32]:
        if self is PcmEncoding.S16LE:
            return np.dtype("<i2")
        return np.dtype("<f4")


@dataclass(frozen=True, slots=True)
class PcmFormat:
    """What the caller declares about raw PCM."""

    encoding: PcmEncoding
    sample_rate: int
    channels: int = 1

    @property
    def frame_bytes(self) -> int:
        return self.encoding.bytes_per_sample * self.channels

    def validate(self, limits: AudioLimits) -> None:
        """Raise AudioError (AudioLimitError for a cap) if this format cannot be accepted."""
        if not isinstance(self.encoding, PcmEncoding):
            raise AudioError(
                f"the raw audio encoding {self.encoding!r} is not supported; use s16le or f32le"
            )
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int):
            raise AudioError(
                f"the sample rate must be a whole number of Hz, not {self.sample_rate!r}"
            )
        if self.sample_rate <= 0:
            raise AudioError(
                f"the raw audio needs a positive sample rate; got {self.sample_rate} Hz"
            )
        if isinstance(self.channels, bool) or not isinstance(self.channels, int):
            raise AudioError(f"the channel count must be a whole number, not {self.channels!r}")
        if self.channels <= 0:
            raise AudioError(f"the raw audio needs at least 1 channel; got {self.channels}")
        limits.check_sample_rate(self.sample_rate)
        limits.check_channels(self.channels)


@dataclass(frozen=True, slots=True, eq=False)
class DecodedAudio:
    """Decoded audio: float32 samples of shape [frames, channels], C-contiguous."""

    samples: Float32Array
    sample_rate: int

    def __post_init__(self) -> None:
        s = self.samples
        if s.dtype != np.float32 or s.ndim != 2 or not s.flags.c_contiguous:
            raise ValueError("DecodedAudio.samples must be C-contiguous float32 [frames, channels]")

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


# --------------------------------------------------------------------------------------------
# Raw PCM
# --------------------------------------------------------------------------------------------


def _nbytes(data: Bytes) -> int:
    return data.nbytes if isinstance(data, memoryview) else len(data)


def _pcm_frames(buf: bytes | bytearray | memoryview, frames: int, fmt: PcmFormat) -> Float32Array:
    """The first `frames` whole frames of `buf` as float32 [frames, channels]."""
    raw = np.frombuffer(buf, dtype=fmt.encoding.dtype, count=frames * fmt.channels)
    if fmt.encoding is PcmEncoding.S16LE:
        out = raw.astype(np.float32)
        out *= _S16_SCALE
    else:
        _check_finite(raw)
        out = raw.astype(np.float32)  # native byte order, and a copy the caller owns
    return out.reshape(frames, fmt.channels)


def _pcm_mono(buf: bytes | bytearray | memoryview, frames: int, fmt: PcmFormat) -> Float32Array:
    """The first `frames` whole frames of `buf` as mono float32 [frames]."""
    if fmt.channels == 1:
        return _pcm_frames(buf, frames, fmt).reshape(frames)
    raw = np.frombuffer(buf, dtype=fmt.encoding.dtype, count=frames * fmt.channels)
    if fmt.encoding is PcmEncoding.F32LE:
        _check_finite(raw)
    mono = _mean_of_columns(raw.reshape(frames, fmt.channels))
    if fmt.encoding is PcmEncoding.S16LE:
        mono *= _S16_SCALE
    return mono


def _check_finite(raw: npt.NDArray[Any]) -> None:
    finite = np.isfinite(raw)
    if not finite.all():
        first = int(np.argmin(finite))
        raise AudioError(
            f"the f32le audio contains NaN or infinite samples (the first at sample {first})"
        )


def pcm_to_float(data: Bytes, fmt: PcmFormat, limits: AudioLimits) -> DecodedAudio:
    """Convert a whole raw PCM clip to float32 [frames, channels] (s16 scaled by 1/32768)."""
    fmt.validate(limits)
    size = _nbytes(data)
    limits.check_encoded_size(size, "raw audio")
    frames, rest = divmod(size, fmt.frame_bytes)
    if rest:
        raise AudioError(
            f"raw {fmt.encoding.value} audio with {fmt.channels} channel(s) comes in "
            f"{fmt.frame_bytes}-byte frames, but {size} bytes is not a whole number of "
            f"frames ({rest} bytes left over)"
        )
    limits.check_frames(frames, fmt.sample_rate, fmt.channels, declared=False)
    return DecodedAudio(_pcm_frames(data, frames, fmt), fmt.sample_rate)


class PcmFramer:
    """Rejoins raw PCM chunks that split frames and converts each chunk to mono float32."""

    __slots__ = ("_fmt", "_frames_received", "_pending", "_received")

    def __init__(self, fmt: PcmFormat) -> None:
        self._fmt = fmt
        self._pending = b""
        self._received = 0
        self._frames_received = 0

    @property
    def format(self) -> PcmFormat:
        return self._fmt

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame kept for the next `push`."""
        return len(self._pending)

    @property
    def bytes_received(self) -> int:
        return self._received

    @property
    def frames_received(self) -> int:
        """Whole frames converted so far."""
        return self._frames_received

    def push(self, data: bytes | bytearray | memoryview) -> Float32Array:
        """Mono float32 samples of every whole frame available so far.

        Raises AudioError (and keeps its state) if f32 samples are NaN or infinite.
        """
        size = _nbytes(data)
        buf = self._pending + bytes(data) if self._pending else data
        total = len(self._pending) + size
        frames = total // self._fmt.frame_bytes
        mono = _pcm_mono(buf, frames, self._fmt)
        used = frames * self._fmt.frame_bytes
        self._pending = bytes(memoryview(buf).cast("B")[used:]) if used < total else b""
        self._received += size
        self._frames_received += frames
        return mono

    def finish(self) -> None:
        """Call at the end of a stream: AudioError if it ended inside a frame."""
        if self._pending:
            raise AudioError(
                f"the raw audio ended with {len(self._pending)} bytes that are not a whole "
                f"{self._fmt.frame_bytes}-byte frame"
            )


# --------------------------------------------------------------------------------------------
# Encoded files
# --------------------------------------------------------------------------------------------


def _sniff(data: Bytes) -> None:
    head = bytes(data[:4])
    if head in _MAGIC or head.startswith(_ID3):
        return
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio frame sync
        return
    raise AudioError(f"the audio is not in a recognised container; {_HINT}")


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
    return AudioError(f"could not decode the audio: {reason}; {_HINT}")


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
    limits.check_encoded_size(_nbytes(data))
    _sniff(data)
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
        raise AudioError(f"the {container} container is not supported; {_HINT}")
    rate = int(f.samplerate)
    channels = int(f.channels)
    if rate <= 0 or channels <= 0:
        raise AudioError(
            f"could not decode the audio: its header declares {rate} Hz and {channels} "
            f"channels; {_HINT}"
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
        raise AudioError(f"the audio file contains no audio frames; {_HINT}")
    if not full:
        samples = buf[:filled]
        if filled < buf.shape[0] // 2:
            samples = samples.copy()  # do not keep a much larger buffer alive
    else:
        samples = np.concatenate([*full, buf[:filled]])
    if not np.isfinite(samples).all():  # float WAVs carry whatever the sender wrote
        raise AudioError("the audio contains NaN or infinite samples")
    return DecodedAudio(samples, rate)


async def decode_encoded_async(
    data: Bytes, limits: AudioLimits, *, pool: DecodePool | None = None
) -> DecodedAudio:
    """`decode_encoded` off the event loop: in `pool` if given (killable, with the time
    budget enforced), else in the default thread pool (the budget is checked between
    blocks only)."""
    if pool is not None:
        return await pool.decode(data, limits)
    return await asyncio.to_thread(decode_encoded, data, limits)


# --------------------------------------------------------------------------------------------
# Worker-process pool
# --------------------------------------------------------------------------------------------

# Time allowed, beyond the decode budget, to move a decoded clip back from the worker.
_TRANSFER_GRACE_S: Final = 10.0
# Time a new worker may take to import numpy and soundfile and say it is ready.
_START_TIMEOUT_S: Final = 60.0


class _Worker:
    """One worker process (a fresh interpreter, never a fork of the gateway) and our end of
    the socket pair it serves."""

    __slots__ = ("popen", "sock")

    def __init__(self, popen: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.popen = popen
        self.sock = sock

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.popen.kill()

    @classmethod
    def start(cls) -> _Worker:
        """Blocking; returns at once, the worker says {"ready": true} when it has imported
        numpy and soundfile (about 0.15 s here)."""
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        # make the child find this very copy of tritone_server, however the gateway was started
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH")) if p
        )
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
        try:
            popen = subprocess.Popen(
                # -P: do not put the working directory first on the child's sys.path
                [sys.executable, "-P", "-m", "tritone_server._decode_worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                # libmpg123 prints a line per corrupt frame; keep it out of the gateway's log
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        return cls(popen, ours)

    def stop(self, *, kill: bool) -> int | None:
        """Blocking: end the process (politely unless `kill`), release everything, and
        return its exit code."""
        if kill:
            self.kill()
        self.sock.close()  # an idle worker exits when it sees EOF
        try:
            return self.popen.wait(2.0)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.popen.wait()


_PACKAGE_PARENT: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class DecodePool:
    """Worker processes that run `decode_encoded` on untrusted files with a time budget.

    A decode that runs past `decode_timeout_s` has its worker killed and replaced and raises
    AudioLimitError(limit="decode_timeout"); a worker that dies (a crash in libsndfile)
    raises AudioError and is replaced. Each worker decodes one file at a time; callers queue
    for a free one. Use as an async context manager.
    """

    def __init__(self, workers: int = 2, limits: AudioLimits = AudioLimits()) -> None:
        if workers < 1:
            raise ValueError("a DecodePool needs at least one worker")
        self._size = workers
        self._limits = limits
        # idle workers; None wakes a waiting decode() when the pool closes
        self._idle: asyncio.Queue[_Worker | None] = asyncio.Queue()
        self._workers: set[_Worker] = set()
        self._busy: set[_Worker] = set()
        self._waiting = 0
        self._starting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._drained = asyncio.Event()
        self._state = "new"  # -> "open" -> "closing" -> "closed"
        # tests only: "crash" or "hang" makes the worker fail that way after accepting a job
        self._fault: str | None = None

    @property
    def limits(self) -> AudioLimits:
        return self._limits

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for metrics and tests)."""
        return sorted(w.pid for w in self._workers)

    async def __aenter__(self) -> DecodePool:
        if self._state != "new":
            raise RuntimeError("a DecodePool can be started only once")
        self._state = "open"
        try:
            started = await asyncio.gather(
                *(_launch() for _ in range(self._size)), return_exceptions=True
            )
            for s in started:
                if isinstance(s, _Worker):
                    self._workers.add(s)
                    self._idle.put_nowait(s)
            for s in started:
                if isinstance(s, BaseException):
                    raise s
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop every worker. Decodes still running fail with RuntimeError."""
        if self._state in ("closing", "closed"):
            return
        self._state = "closing"
        for _ in range(self._waiting):
            self._idle.put_nowait(None)
        for w in self._busy:
            w.kill()  # its decode() sees the worker die, raises, and cleans up after it
        if self._busy:
            self._drained.clear()
            await self._drained.wait()
        while self._tasks:  # replacements being started stop themselves; stops finish
            await asyncio.gather(*self._tasks, return_exceptions=True)
        idle = [w for w in self._workers if w not in self._busy]
        self._workers.clear()
        await asyncio.gather(*(asyncio.to_thread(w.stop, kill=False) for w in idle))
        self._state = "closed"

    async def decode(self, data: Bytes, limits: AudioLimits | None = None) -> DecodedAudio:
        """Decode `data` in a worker process under `limits` (the pool's by default)."""
        if self._state != "open":
            raise RuntimeError("the DecodePool is not running; use it with 'async with'")
        limits = limits or self._limits
        limits.check_encoded_size(_nbytes(data))
        _sniff(data)  # cheap refusals need no worker
        # a worker found dead before it took the job is not this caller's fault: try another,
        # but not forever (workers that cannot start at all must surface as an error)
        for _ in range(self._size + 3):
            self._replenish()
            self._waiting += 1
            try:
                worker = await self._idle.get()
            finally:
                self._waiting -= 1
            if worker is None or self._state != "open":
                if worker is not None:
                    self._idle.put_nowait(worker)
                raise RuntimeError("the DecodePool was closed")
            if not worker.alive():  # died while idle (OOM killer, operator)
                self._retire(worker, kill=False)
                continue
            self._busy.add(worker)
            ok = False
            try:
                result = await self._run(worker, data, limits)
                ok = True
                return result
            except _WorkerGone:
                continue
            except AudioError as exc:
                # the worker answered, so it is healthy, unless it timed out or died
                ok = not getattr(exc, "_worker_lost", False) and worker.alive()
                raise
            finally:
                self._busy.discard(worker)
                if ok and self._state == "open":
                    self._idle.put_nowait(worker)
                else:
                    self._retire(worker, kill=not ok)
                if not self._busy:
                    self._drained.set()
        raise RuntimeError("decode workers keep exiting before they take a job; see the log")

    @staticmethod
    async def _stop(worker: _Worker, *, kill: bool) -> None:
        await asyncio.to_thread(worker.stop, kill=kill)

    async def _run(self, worker: _Worker, data: Bytes, limits: AudioLimits) -> DecodedAudio:
        loop = asyncio.get_running_loop()
        sock = worker.sock
        accepted = False
        try:
            async with asyncio.timeout(limits.decode_timeout_s):
                job: dict[str, object] = {"limits": dataclasses.asdict(limits)}
                if self._fault is not None:
                    job["fault"] = self._fault
                header = json.dumps(job).encode()
                await _wire.asend_frame(loop, sock, header)
                await _wire.asend_frame(loop, sock, data)
                ack = await _wire.arecv_json(loop, sock)
                if ack != {"accepted": True}:
                    raise _wire.ProtocolError("no acknowledgement")
                accepted = True
                reply = await _wire.arecv_json(loop, sock)
            if not reply.get("ok"):
                message = str(reply.get("message") or f"could not decode the audio; {_HINT}")
                limit = reply.get("limit")
                if limit is not None:
                    raise AudioLimitError(message, limit=str(limit))
                raise AudioError(message)
            samples = _empty_for_reply(reply, limits)
            async with asyncio.timeout(limits.decode_timeout_s + _TRANSFER_GRACE_S):
                await _wire.arecv_payload_into(loop, sock, samples.data.cast("B"))
            if sys.byteorder != "little":
                samples.byteswap(inplace=True)
            return DecodedAudio(samples, int(reply["sample_rate"]))
        except TimeoutError:
            worker.kill()
            _log.warning(
                "event=decode_timeout pid=%s limit_s=%g", worker.pid, limits.decode_timeout_s
            )
            raise _lost(
                AudioLimitError(
                    f"decoding the audio took longer than the limit of "
                    f"{limits.decode_timeout_s:g} s",
                    limit="decode_timeout",
                )
            ) from None
        except (EOFError, OSError, _wire.ProtocolError) as exc:
            if self._state != "open":
                raise RuntimeError("the DecodePool was closed during the decode") from exc
            code = await asyncio.to_thread(worker.stop, kill=True)
            _log.warning(
                "event=decode_worker_lost pid=%s exitcode=%s accepted=%s error=%r",
                worker.pid,
                code,
                accepted,
                exc,
            )
            if not accepted:
                raise _WorkerGone from exc
            raise _lost(
                AudioError(
                    f"could not decode the audio: the decoder process stopped unexpectedly "
                    f"(exit code {code}); {_HINT}"
                )
            ) from None

    def _retire(self, worker: _Worker, *, kill: bool = True) -> None:
        """Stop a worker (killing it if it may be busy) and start a replacement."""
        self._workers.discard(worker)
        if kill:
            worker.kill()
        self._spawn_task(self._stop(worker, kill=kill))
        self._replenish()

    def _replenish(self) -> None:
        if self._state != "open":
            return
        while len(self._workers) + self._starting < self._size:
            self._starting += 1
            self._spawn_task(self._add_worker())

    async def _add_worker(self) -> None:
        try:
            worker = await _launch()
        except Exception:
            _log.exception("event=decode_worker_start_failed")
            return
        finally:
            self._starting -= 1
        if self._state != "open":
            await asyncio.to_thread(worker.stop, kill=False)
            return
        self._workers.add(worker)
        self._idle.put_nowait(worker)

    def _spawn_task(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _launch() -> _Worker:
    """Start a worker and wait until it is ready, so no caller's budget pays for its start."""
    worker = await asyncio.to_thread(_Worker.start)
    try:
        async with asyncio.timeout(_START_TIMEOUT_S):
            hello = await _wire.arecv_json(asyncio.get_running_loop(), worker.sock)
        if hello != {"ready": True}:
            raise _wire.ProtocolError(f"unexpected greeting {hello!r}")
    except BaseException as exc:
        code = await asyncio.to_thread(worker.stop, kill=True)
        if isinstance(exc, Exception):
            raise RuntimeError(f"a decode worker failed to start (exit code {code})") from exc
        raise
    return worker


class _WorkerGone(Exception):
    """The worker was gone before it acknowledged the job."""


def _lost(exc: AudioError) -> AudioError:
    """Mark an error after which the worker must not be reused."""
    exc._worker_lost = True  # type: ignore[attr-defined]
    return exc


def _empty_for_reply(reply: dict[str, object], limits: AudioLimits) -> Float32Array:
    """Check a worker's success header against the limits; allocate the array it announces."""
    frames, channels, rate = reply.get("frames"), reply.get("channels"), reply.get("sample_rate")
    if not (isinstance(frames, int) and isinstance(channels, int) and isinstance(rate, int)):
        raise _wire.ProtocolError("malformed reply header")
    if frames < 1 or not 1 <= channels <= limits.max_channels or rate <= 0:
        raise _wire.ProtocolError("reply header out of range")
    if frames * channels * 4 > limits.max_decoded_bytes or frames > limits.max_duration_s * rate:
        raise _wire.ProtocolError("reply larger than the limits")
    return np.empty((frames, channels), dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Downmix, resampling, windows
# --------------------------------------------------------------------------------------------


def to_mono(samples: npt.NDArray[np.floating[Any]]) -> Float32Array:
    """[frames, channels] -> [frames] float32, the mean of the channels (1-D passes through)."""
    if samples.ndim == 1:
        return np.ascontiguousarray(samples, dtype=np.float32)
    if samples.ndim != 2:
        raise ValueError(f"expected [frames, channels] samples, got shape {samples.shape}")
    if samples.shape[1] == 1:
        return np.ascontiguousarray(samples[:, 0], dtype=np.float32)
    return _mean_of_columns(samples)


def _mean_of_columns(frames: npt.NDArray[Any]) -> Float32Array:
    """Mean over axis 1 of [n, channels] as float32, one vector add per channel (numpy's
    own mean over a short last axis is about ten times slower)."""
    channels = frames.shape[1]
    out: Float32Array = frames[:, 0].astype(np.float32)
    for c in range(1, channels):
        out += frames[:, c]
    out *= np.float32(1.0 / channels)
    return out


def _check_rates(from_rate: int, to_rate: int) -> None:
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} and {to_rate}")


def resample(mono: Float32Array, from_rate: int, to_rate: int) -> Float32Array:
    """Resample mono float32 audio with soxr (HQ); the identity when the rates are equal."""
    _check_rates(from_rate, to_rate)
    x = np.ascontiguousarray(mono, dtype=np.float32)
    if from_rate == to_rate or x.size == 0:
        return x
    out: Float32Array = soxr.resample(x, from_rate, to_rate)
    return out


class StreamResampler:
    """One live stream's resampler (soxr.ResampleStream, HQ).

    Feed mono chunks of any size to `process`; call `flush` once at the end for the tail.
    The concatenated output is sample-for-sample what `resample` gives on the whole input
    (same length, no delay); soxr holds back a few hundred output samples until more input
    or `flush` arrives.
    """

    __slots__ = ("_done", "_from", "_in", "_out", "_rs", "_to")

    def __init__(self, from_rate: int, to_rate: int) -> None:
        _check_rates(from_rate, to_rate)
        self._from = from_rate
        self._to = to_rate
        self._rs = (
            None
            if from_rate == to_rate
            else soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality="HQ")
        )
        self._in = 0
        self._out = 0
        self._done = False

    @property
    def samples_in(self) -> int:
        return self._in

    @property
    def samples_out(self) -> int:
        return self._out

    def process(self, mono: Float32Array) -> Float32Array:
        if self._done:
            raise RuntimeError("StreamResampler.process() after flush()")
        x = np.ascontiguousarray(mono, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"expected mono samples, got shape {x.shape}")
        self._in += x.shape[0]
        if self._rs is None:
            out = x.copy() if x is mono else x
        else:
            out = self._rs.resample_chunk(x, last=False)
        self._out += out.shape[0]
        return out

    def flush(self) -> Float32Array:
        """The held-back tail; the stream is finished afterwards (a second flush is empty)."""
        if self._done or self._rs is None:
            self._done = True
            return np.zeros(0, dtype=np.float32)
        self._done = True
        out: Float32Array = self._rs.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._out += out.shape[0]
        return out


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Start offsets of the analysis windows for a clip of `n_samples`.

    0, hop, 2*hop, ... while start + window <= n_samples; [0] if the clip is shorter than one
    window (it will be zero-padded); and if the last full window leaves a tail, one more
    window ending at the clip's end, so every sample is covered. `window == 0` means one
    window spanning the whole clip.
    """
    if n_samples < 0 or window < 0:
        raise ValueError("n_samples and window must not be negative")
    if window == 0 or n_samples <= window:
        return [0]
    if hop <= 0:
        raise ValueError(f"hop must be positive, got {hop}")
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def frame_windows(mono: Float32Array, window: int, hop: int) -> tuple[Float32Array, list[int]]:
    """Cut a mono clip into windows: float32 [num_windows, window] and their starts.

    A clip shorter than a window gives one zero-padded window; `window == 0` gives one
    window that is the whole clip.
    """
    x = np.ascontiguousarray(mono, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {x.shape}")
    n = x.shape[0]
    starts = window_starts(n, window, hop)
    if window == 0:
        return x.reshape(1, n).copy(), starts
    if n < window:
        out: Float32Array = np.zeros((1, window), dtype=np.float32)
        out[0, :n] = x
        return out, starts
    view = np.lib.stride_tricks.sliding_window_view(x, window)
    windows: Float32Array = view[np.asarray(starts, dtype=np.intp)]
    return windows, starts
