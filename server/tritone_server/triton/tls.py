"""TLS on the hop from the gateway to Triton (Triton run with ``--grpc-use-ssl``).

The gateway trusts the Tritons whose certificates a CA bundle signed (``--triton-tls-ca``).
Discovered endpoints are IP addresses (a headless Service answers with pod IPs), which a
certificate rarely names, so ``--triton-tls-server-name`` gives the name every Triton's
certificate is checked against instead (e.g. the headless Service's name); empty checks the
address as dialled. The bundle is read once, at start: a rotated CA takes a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
import tritonclient.grpc.aio as triton_aio

from tritone_server.triton.endpoints import ClientFactory, TritonClient


@dataclass(frozen=True, slots=True)
class TritonTls:
    root_certificates: bytes
    server_name: str = ""

    @classmethod
    def from_file(cls, ca: Path, server_name: str = "") -> TritonTls:
        """The CA bundle in ``ca``; ValueError with a sentence if it holds no certificate."""
        data = ca.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise ValueError(f"{ca} holds no PEM certificate: --triton-tls-ca needs a CA bundle")
        return cls(data, server_name)

    def channel_args(self) -> list[tuple[str, str]]:
        if not self.server_name:
            return []
        return [("grpc.ssl_target_name_override", self.server_name)]


def client_factory(channel_args: list[tuple[str, object]], tls: TritonTls | None) -> ClientFactory:
    """Makes one tritonclient client per channel: plaintext, or TLS trusting ``tls``."""

    def plaintext(address: str) -> TritonClient:
        client: TritonClient = triton_aio.InferenceServerClient(address, channel_args=channel_args)
        return client

    if tls is None:
        return plaintext
    args = [*channel_args, *tls.channel_args()]

    def secure(address: str) -> TritonClient:
        credentials = grpc.ssl_channel_credentials(root_certificates=tls.root_certificates)
        client: TritonClient = triton_aio.InferenceServerClient(
            address, creds=credentials, channel_args=args
        )
        return client

    return secure
