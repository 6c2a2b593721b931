"""The worker-process side of `decode_pool.DecodePool`, and the wire format both sides speak.

A worker owns one end of a socket pair and loops: receive a job, decode it with
`decode.decode_encoded`, send the result. Messages are length-prefixed frames (8-byte
big-endian length, then the payload):

    worker -> parent   JSON {"ready": true}   once, when it has imported what it needs
    parent -> worker   JSON {"limits": {...AudioLimits fields}, "to_rate": R or null,
                             "fault": (tests only)}
                       then the encoded file bytes
    worker -> parent   JSON {"accepted": true}   once the whole job has arrived, then
                       JSON {"ok": true, "frames": F, "channels": C, "sample_rate": R,
                             "input_frames": F0, "input_channels": C0,
                             "input_sample_rate": R0}
                       then F * C little-endian float32 samples, interleaved
                  or   JSON {"ok": false, "message": "...", "limit": "duration" | null}

With "to_rate" the worker also downmixes to mono and resamples to that rate (C is then 1 and
R is "to_rate"), so the audio is prepared once, off the gateway's loop, and a clip crosses
the process boundary at the model's rate in one channel. Without it, F0, C0, R0 equal F, C,
R.

The parent never unpickles what a worker sends: a worker parses untrusted files, so its
replies are treated as untrusted too (JSON, sizes checked against the limits).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import time
from typing import Any, Final

from tritone_server.audio.decode import decode_encoded
from tritone_server.audio.dsp import resample, to_mono
from tritone_server.audio.formats import AudioLimits
from tritone_server.errors import AudioError, AudioLimitError

MEMORY_LIMIT_ENV: Final = "TRITONE_DECODE_WORKER_AS_BYTES"
"""Environment variable through which the pool gives a worker its address-space limit."""

_LEN: Final = struct.Struct(">Q")
#: the largest JSON header either side accepts
MAX_HEADER_BYTES: Final = 64 * 1024


class ProtocolError(Exception):
    """The other side sent something that is not a valid frame."""


# ---- blocking side (the worker) ------------------------------------------------------------


def _recv_exact(sock: socket.socket, size: int) -> bytearray:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError
        got += n
    return buf


def recv_frame(sock: socket.socket, max_bytes: int) -> bytearray:
    (size,) = _LEN.unpack(_recv_exact(sock, _LEN.size))
    if size > max_bytes:
        raise ProtocolError(f"frame of {size} bytes exceeds {max_bytes}")
    return _recv_exact(sock, size)


def send_frame(sock: socket.socket, payload: bytes | bytearray | memoryview) -> None:
    view = memoryview(payload).cast("B")
    sock.sendall(_LEN.pack(view.nbytes))
    sock.sendall(view)


def send_json(sock: socket.socket, obj: dict[str, Any]) -> None:
    send_frame(sock, json.dumps(obj).encode())


# ---- asyncio side (the gateway) ------------------------------------------------------------


async def _arecv_into(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, view: memoryview
) -> None:
    got = 0
    size = view.nbytes
    while got < size:
        n = await loop.sock_recv_into(sock, view[got:])
        if n == 0:
            raise EOFError
        got += n


async def arecv_length(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> int:
    head = bytearray(_LEN.size)
    await _arecv_into(loop, sock, memoryview(head))
    (size,) = _LEN.unpack(head)
    return int(size)


async def arecv_json(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> dict[str, Any]:
    size = await arecv_length(loop, sock)
    if size > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {size} bytes")
    buf = bytearray(size)
    await _arecv_into(loop, sock, memoryview(buf))
    try:
        obj = json.loads(buf)
    except ValueError as exc:
        raise ProtocolError("header is not JSON") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("header is not a JSON object")
    return obj


async def arecv_payload_into(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, view: memoryview
) -> None:
    """Receive one frame whose payload must be exactly `view.nbytes` long into `view`."""
    size = await arecv_length(loop, sock)
    if size != view.nbytes:
        raise ProtocolError(f"payload of {size} bytes, expected {view.nbytes}")
    await _arecv_into(loop, sock, view)


async def asend_frame(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, payload: bytes | bytearray | memoryview
) -> None:
    view = memoryview(payload).cast("B")
    await loop.sock_sendall(sock, _LEN.pack(view.nbytes))
    await loop.sock_sendall(sock, view)


# ---- the worker ----------------------------------------------------------------------------


def _inject_fault(fault: object) -> None:
    """Tests only (set by the gateway, never by a caller): fail as libsndfile might."""
    if fault == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif fault == "hang":
        time.sleep(3600)


def worker_main(sock: socket.socket) -> None:
    """Serve decode jobs on `sock` until the gateway closes it (or dies)."""
    # The gateway owns our lifetime: a Ctrl-C to its process group must not kill us mid-job
    # with a traceback; the gateway stops us by closing the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock.setblocking(True)
    with sock:
        try:
            send_json(sock, {"ready": True})
        except OSError:
            return
        while True:
            try:
                header = json.loads(recv_frame(sock, MAX_HEADER_BYTES))
                limits = AudioLimits(**header["limits"])
                data = recv_frame(sock, limits.max_encoded_bytes)
                send_json(sock, {"accepted": True})
            except (EOFError, OSError):
                return
            _inject_fault(header.get("fault"))
            samples = None
            try:
                audio = decode_encoded(data, limits)
            except AudioLimitError as exc:
                reply: dict[str, Any] = {"ok": False, "message": str(exc), "limit": exc.limit}
            except AudioError as exc:
                reply = {"ok": False, "message": str(exc), "limit": None}
            except MemoryError:
                reply = {
                    "ok": False,
                    "message": "the decoder ran out of memory on this audio",
                    "limit": "decoded_bytes",
                }
            except Exception as exc:  # a bug, not the caller's audio: say so, keep serving
                reply = {
                    "ok": False,
                    "message": f"could not decode the audio: internal decoder error "
                    f"({type(exc).__name__})",
                    "limit": None,
                }
            else:
                reply = {
                    "ok": True,
                    "input_frames": audio.frames,
                    "input_channels": audio.channels,
                    "input_sample_rate": audio.sample_rate,
                }
                to_rate = header.get("to_rate")
                if isinstance(to_rate, int) and to_rate > 0:
                    mono = resample(to_mono(audio.samples), audio.sample_rate, to_rate)
                    samples = mono.astype("<f4", copy=False).reshape(-1, 1)
                    rate = to_rate
                else:
                    samples = audio.samples.astype("<f4", copy=False)
                    rate = audio.sample_rate
                reply.update(
                    frames=int(samples.shape[0]),
                    channels=int(samples.shape[1]),
                    sample_rate=rate,
                )
                del audio
            del data
            try:
                send_json(sock, reply)
                if samples is not None:
                    send_frame(sock, samples.data if samples.size else b"")  # 0 frames: no buffer
            except OSError:
                return
            del samples


def limit_memory(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """Apply the address-space limit the pool passed in MEMORY_LIMIT_ENV; 0: none.

    An allocation past it raises MemoryError, which the loop above reports as a limit: a
    decoder bomb that slips past the header checks costs one reply, not the machine.
    """
    import resource

    limit = int(environ.get(MEMORY_LIMIT_ENV, "0") or 0)
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return limit


if __name__ == "__main__":
    import sys

    limit_memory()
    worker_main(socket.socket(fileno=int(sys.argv[1])))
