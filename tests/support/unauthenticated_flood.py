"""Unauthenticated callers sending large Classify messages, and what the gateway holds.

Each caller has a connection of its own (a channel with a distinct option, so gRPC does not
share one) and sends one Classify of ``size`` bytes without a token; every answer should be
UNAUTHENTICATED. The gateway's memory is read from /proc: the peak resident set (VmHWM) of
its process and the resident set of its children but Triton (the decode workers share the
gateway's container in a pod; Triton runs in a pod of its own).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

import grpc

from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc

MIB = 1024 * 1024
_KIB_LINE = re.compile(r"^(\w+):\s+(\d+) kB$", re.M)


def _status_kib(pid: int) -> dict[str, int]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {name: int(kib) for name, kib in _KIB_LINE.findall(text)}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found.extend(int(c) for c in children)
    return found


def _name(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


@dataclass(frozen=True)
class GatewayMemory:
    peak_rss_bytes: int
    """VmHWM of the gateway process: the most it held at once since it started."""
    rss_bytes: int
    """VmRSS of the gateway process now."""
    workers_rss_bytes: int
    """Resident set of the gateway's children but Triton (the decode workers), now."""

    @property
    def container_peak_bytes(self) -> int:
        """What the gateway's container held at most, bounded from above."""
        return self.peak_rss_bytes + self.workers_rss_bytes


def gateway_memory(pid: int) -> GatewayMemory:
    own = _status_kib(pid)
    workers = 0
    for child in _children(pid):
        try:
            if _name(child).startswith("tritonserver"):
                continue
            workers += _status_kib(child).get("VmRSS", 0) * 1024
        except OSError:
            continue  # a child that ended meanwhile
    return GatewayMemory(own["VmHWM"] * 1024, own["VmRSS"] * 1024, workers)


async def unauthenticated_classify(
    target: str, size: int, connection: int, token: str | None = None
) -> grpc.StatusCode:
    """One Classify message of ``size`` bytes (encoded audio of ``size`` - 32) without a
    token (or with ``token``, for comparison), on a connection of its own; the status it
    ended with."""
    options = [
        ("grpc.max_send_message_length", size + MIB),
        ("grpc.max_receive_message_length", 4 * MIB),
        ("tritone.test.connection", connection),  # a distinct channel: no shared subchannel
    ]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        stub = pb_grpc.AudioClassificationStub(channel)  # type: ignore[no-untyped-call]
        request = pb.ClassifyRequest(audio=pb.Audio(encoded=bytes(size - 32)), model="tones")
        try:
            metadata = None if token is None else (("authorization", f"Bearer {token}"),)
            await stub.Classify(request, timeout=120, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK


async def flood(
    target: str, size: int, connections: int, token: str | None = None
) -> list[grpc.StatusCode]:
    """``connections`` Classify calls of ``size`` bytes at once, without a token unless
    ``token`` is given."""
    return list(
        await asyncio.gather(
            *(unauthenticated_classify(target, size, i, token) for i in range(connections))
        )
    )
