"""Triton targets, and how a discovered target's name becomes endpoint addresses.

``dns:///name:port`` names a set of Tritons (in Kubernetes a headless Service: one A record
per ready pod); the pool resolves it, resolves it again now and then, and follows the answer.
A plain ``host:port`` is one endpoint, used as given (gRPC resolves it itself). The resolver
is an interface so that tests can change the answer without a DNS server.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Protocol

DNS_SCHEME = "dns:"
TRITON_GRPC_PORT = 8001
"""Port of a ``dns:///name`` target that names none: Triton's gRPC default."""


@dataclass(frozen=True, slots=True)
class TritonTarget:
    """One ``--triton-url``: either a fixed endpoint or a name to resolve."""

    url: str
    """As given."""
    host: str
    port: int
    discovered: bool
    """True for ``dns:///``: the endpoints are whatever the name resolves to."""

    @classmethod
    def parse(cls, url: str) -> TritonTarget:
        if not url.startswith(DNS_SCHEME):
            host, _, port = url.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"Triton URL {url!r} is not host:port or dns:///name:port")
            return cls(url, host, int(port), discovered=False)
        rest = url[len(DNS_SCHEME) :]
        if not rest.startswith("///"):
            # dns://server/name would ask a chosen DNS server: the system's resolver only
            raise ValueError(f"Triton URL {url!r}: write dns:///name:port (three slashes)")
        name = rest[3:]
        host, port = name, str(TRITON_GRPC_PORT)
        if name.startswith("["):  # [v6]:port
            close = name.find("]")
            host, tail = name[1:close], name[close + 1 :]
            if tail.startswith(":"):
                port = tail[1:]
        elif ":" in name:
            host, port = name.rsplit(":", 1)
        if not host or not port.isdigit():
            raise ValueError(f"Triton URL {url!r} is not dns:///name:port")
        return cls(url, host, int(port), discovered=True)


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]:
        """Addresses ("ip:port") now behind ``host``; OSError when the name does not
        resolve (the pool then keeps the last answer)."""
        ...


def address(ip: str, port: int) -> str:
    """The "host:port" form gRPC targets take (IPv6 in brackets)."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


class DnsResolver:
    """The system resolver (``loop.getaddrinfo``): every A/AAAA record of a name."""

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        found: list[str] = []
        for *_, sockaddr in infos:
            entry = address(str(sockaddr[0]), int(sockaddr[1]))
            if entry not in found:
                found.append(entry)
        return found
