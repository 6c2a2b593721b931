"""Worker processes that decode untrusted files, so a decoder that hangs is killed at
`AudioLimits.decode_timeout_s` and one that crashes costs one request, not the gateway.

The worker side and the wire format live in `_decode_worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Coroutine
from typing import Final

import numpy as np

from tritone_server.audio import _decode_worker as _wire
from tritone_server.audio.decode import HINT, decode_encoded, sniff
from tritone_server.audio.formats import (
    AudioLimits,
    Bytes,
    DecodedAudio,
    Float32Array,
    PreparedAudio,
    nbytes,
)
from tritone_server.errors import AudioError, AudioLimitError, LimitExceeded

__all__ = ["DecodePool", "decode_encoded_async"]

_log = logging.getLogger(__name__)

_WORKER_MODULE: Final = "tritone_server.audio._decode_worker"
_DEFAULT_LIMITS: Final = AudioLimits()

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
    def start(cls, memory_limit_bytes: int = 0) -> _Worker:
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
        env[_wire.MEMORY_LIMIT_ENV] = str(max(0, memory_limit_bytes))
        try:
            popen = subprocess.Popen(
                # -P: do not put the working directory first on the child's sys.path
                [sys.executable, "-P", "-m", _WORKER_MODULE, str(theirs.fileno())],
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


_PACKAGE_PARENT: Final = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


class DecodePool:
    """Worker processes that run `decode_encoded` on untrusted files with a time budget.

    A decode that runs past `decode_timeout_s` has its worker killed and replaced and raises
    AudioLimitError(limit="decode_timeout"); a worker that dies (a crash in libsndfile)
    raises AudioError and is replaced. Each worker decodes one file at a time; callers queue
    for a free one. Use as an async context manager.
    """

    def __init__(
        self,
        workers: int = 2,
        limits: AudioLimits = _DEFAULT_LIMITS,
        *,
        max_waiting: int = 64,
        memory_limit_bytes: int = 0,
    ) -> None:
        if workers < 1:
            raise ValueError("a DecodePool needs at least one worker")
        if max_waiting < 0:
            raise ValueError("max_waiting must be 0 or more")
        self._size = workers
        self._max_waiting = max_waiting
        self._memory_limit = memory_limit_bytes
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
                *(_launch(self._memory_limit) for _ in range(self._size)), return_exceptions=True
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
        samples, reply = await self._job(data, limits, None)
        return DecodedAudio(samples, int(reply["sample_rate"]))  # type: ignore[call-overload]

    async def prepare(
        self, data: Bytes, to_rate: int, limits: AudioLimits | None = None
    ) -> PreparedAudio:
        """Decode `data` in a worker and have it downmix to mono and resample to `to_rate`
        there: one preparation, off the gateway's loop, and 1/channels of the bytes back."""
        samples, reply = await self._job(data, limits, to_rate)
        return PreparedAudio(
            samples.reshape(-1),
            to_rate,
            input_frames=int(reply["input_frames"]),  # type: ignore[call-overload]
            input_sample_rate=int(reply["input_sample_rate"]),  # type: ignore[call-overload]
            input_channels=int(reply["input_channels"]),  # type: ignore[call-overload]
        )

    async def _job(
        self, data: Bytes, limits: AudioLimits | None, to_rate: int | None
    ) -> tuple[Float32Array, dict[str, object]]:
        if self._state != "open":
            raise RuntimeError("the DecodePool is not running; use it with 'async with'")
        limits = limits or self._limits
        limits.check_encoded_size(nbytes(data))
        sniff(data)  # cheap refusals need no worker
        # a worker found dead before it took the job is not this caller's fault: try another,
        # but not forever (workers that cannot start at all must surface as an error)
        for _ in range(self._size + 3):
            self._replenish()
            if self._idle.empty() and self._waiting >= self._max_waiting:
                # A queue without bound grows with every caller while the workers fall
                # behind; refused now, the caller can go to another replica.
                raise LimitExceeded(
                    f"{self._waiting} decode requests already wait for a decode worker, the "
                    "limit (decode_queue, set by --decode-queue / TRITONE_DECODE_QUEUE)",
                    limit="decode_queue",
                )
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
                result = await self._run(worker, data, limits, to_rate)
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

    async def _run(
        self, worker: _Worker, data: Bytes, limits: AudioLimits, to_rate: int | None
    ) -> tuple[Float32Array, dict[str, object]]:
        loop = asyncio.get_running_loop()
        sock = worker.sock
        accepted = False
        try:
            async with asyncio.timeout(limits.decode_timeout_s):
                job: dict[str, object] = {"limits": dataclasses.asdict(limits), "to_rate": to_rate}
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
                message = str(reply.get("message") or f"could not decode the audio; {HINT}")
                limit = reply.get("limit")
                if limit is not None:
                    raise AudioLimitError(message, limit=str(limit))
                raise AudioError(message)
            samples = _empty_for_reply(reply, limits, to_rate)
            async with asyncio.timeout(limits.decode_timeout_s + _TRANSFER_GRACE_S):
                # an empty array's buffer cannot be cast (a file of a frame or two can
                # resample to no samples at all)
                view = samples.data.cast("B") if samples.size else memoryview(bytearray())
                await _wire.arecv_payload_into(loop, sock, view)
            if sys.byteorder != "little":
                samples.byteswap(inplace=True)
            return samples, reply
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
                    f"(exit code {code}); {HINT}"
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
            worker = await _launch(self._memory_limit)
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


async def _launch(memory_limit_bytes: int = 0) -> _Worker:
    """Start a worker and wait until it is ready, so no caller's budget pays for its start."""
    worker = await asyncio.to_thread(_Worker.start, memory_limit_bytes)
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


def _empty_for_reply(
    reply: dict[str, object], limits: AudioLimits, to_rate: int | None
) -> Float32Array:
    """Check a worker's success header against the limits and what was asked; allocate the
    array it announces."""
    frames, channels, rate = reply.get("frames"), reply.get("channels"), reply.get("sample_rate")
    if not (isinstance(frames, int) and isinstance(channels, int) and isinstance(rate, int)):
        raise _wire.ProtocolError("malformed reply header")
    source = [reply.get(k) for k in ("input_frames", "input_channels", "input_sample_rate")]
    if not all(isinstance(v, int) and v >= 1 for v in source):
        raise _wire.ProtocolError("malformed reply header")
    if to_rate is not None and (channels != 1 or rate != to_rate):
        raise _wire.ProtocolError("reply not prepared as asked")
    # resampling a very short clip may leave no samples; a plain decode always has some
    least = 0 if to_rate is not None else 1
    if frames < least or not 1 <= channels <= limits.max_channels or rate <= 0:
        raise _wire.ProtocolError("reply header out of range")
    # prepared audio is bounded by the duration (one sample of slack: a resampler rounds
    # the length up); a plain decode by the decoded bytes too
    too_long = frames > limits.max_duration_s * rate + (1 if to_rate is not None else 0)
    too_big = to_rate is None and frames * channels * 4 > limits.max_decoded_bytes
    if too_long or too_big:
        raise _wire.ProtocolError("reply larger than the limits")
    return np.empty((frames, channels), dtype=np.float32)


async def decode_encoded_async(
    data: Bytes, limits: AudioLimits, *, pool: DecodePool | None = None
) -> DecodedAudio:
    """`decode_encoded` off the event loop: in `pool` if given (killable, with the time
    budget enforced), else in the default thread pool (the budget is checked between
    blocks only)."""
    if pool is not None:
        return await pool.decode(data, limits)
    return await asyncio.to_thread(decode_encoded, data, limits)
