"""TLS for the gateway's gRPC and HTTP ports, with certificates re-read while serving.

cert-manager (or an operator with ``kubectl create secret``) replaces the mounted files while
the gateway runs, so the gateway never holds a certificate for its whole life:

- gRPC uses ``grpc.dynamic_ssl_server_credentials``: gRPC asks a fetcher before every new
  connection's handshake whether the certificate changed; connections already open (and the
  live streams on them) keep the one they were made with.
- HTTP uses one listening ``ssl.SSLContext`` whose ``sni_callback`` (called for every
  ClientHello, with or without SNI) moves the new connection onto the context built from the
  current files. Open connections are not touched either.

Both ask `ServerTls.refresh`, which compares the files' ``stat`` (inode, size, mtime; a
Kubernetes Secret volume swaps a symlink, so the inode changes) and re-reads only on change;
SIGHUP forces a re-read. A half-written or mismatched pair (cert from the new Secret, key
from the old) fails to load: the old material stays in use, an error is logged, and the next
handshake tries again.

Whether callers must present a client certificate (mTLS) is decided at start: gRPC fixes it
when the port is bound. The client CA bundle itself is re-read like the certificate.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from tritone_server.settings import Settings

log = logging.getLogger("tritone_server.frontends.tls")

__all__ = ["ServerTls", "TlsMaterial"]

_Signature = tuple[tuple[int, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """One consistent reading of the PEM files."""

    certificate_chain: bytes
    private_key: bytes
    client_ca: bytes | None


class ServerTls:
    """The gateway's server certificate (and client CA), re-read when the files change.

    Args:
        cert: PEM certificate chain.
        key: PEM private key of ``cert``.
        client_ca: PEM CA bundle; when given, callers must present a certificate it signed.

    Raises OSError or ssl.SSLError at construction if the files cannot be used, so a
    gateway with a broken TLS setup does not start.
    """

    def __init__(self, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        self._paths = (cert, key) if client_ca is None else (cert, key, client_ca)
        self.require_client_cert = client_ca is not None
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._material, self._context = self._load()
        self.version = 1
        """Goes up by one at every successful re-read."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerTls | None:
        """TLS for these settings, or None when they ask for plaintext."""
        if settings.tls_cert is None or settings.tls_key is None:
            return None
        return cls(settings.tls_cert, settings.tls_key, settings.tls_client_ca)

    @property
    def material(self) -> TlsMaterial:
        with self._lock:
            return self._material

    def _stat(self) -> _Signature:
        signature = []
        for path in self._paths:
            st = os.stat(path)
            signature.append((st.st_ino, st.st_dev, st.st_mtime_ns, st.st_size))
        return tuple(signature)

    def _read(self) -> tuple[bytes, ...]:
        return tuple(path.read_bytes() for path in self._paths)

    def _load(self) -> tuple[TlsMaterial, ssl.SSLContext]:
        """Read the files and build the HTTP context from the same bytes.

        ``load_cert_chain`` only takes paths, so the bytes are read before and after it: if
        they differ, the files were being replaced and this reading is refused.
        """
        before = self._read()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._paths[0], self._paths[1])
        if self.require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=before[2].decode("ascii"))
        if self._read() != before:
            raise OSError("the certificate files changed while they were read")
        material = TlsMaterial(before[0], before[1], before[2] if len(before) > 2 else None)
        return material, context

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read the files if they changed (or if ``force``); True when new ones are in use.

        Never raises: a failed re-read is logged and the current material stays.
        """
        try:
            signature = self._stat()
            if not force and signature == self._signature:
                return False
            material, context = self._load()
        except (OSError, ValueError, ssl.SSLError) as exc:
            log.error("event=tls_reload_failed error=%r", exc)
            return False
        with self._lock:
            changed = material != self._material
            self._signature = signature
            self._material, self._context = material, context
            if changed:
                self.version += 1
        if changed:
            log.info("event=tls_reloaded version=%d", self.version)
        return changed

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Server credentials whose certificate follows `refresh`, checked per connection."""
        served = [self.version]

        def configuration(material: TlsMaterial) -> Any:
            return grpc.ssl_server_certificate_configuration(
                [(material.private_key, material.certificate_chain)],
                root_certificates=material.client_ca,
            )

        def fetch() -> Any:
            # Called by gRPC before each new connection's handshake; None keeps the current.
            self.refresh()
            with self._lock:
                if self.version == served[0]:
                    return None
                served[0] = self.version
                return configuration(self._material)

        return grpc.dynamic_ssl_server_credentials(
            configuration(self.material),
            fetch,
            require_client_authentication=self.require_client_cert,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """The listening context for aiohttp; each connection moves to the current one."""
        _, listening = self._load()

        def switch(ssl_object: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
            self.refresh()
            with self._lock:
                ssl_object.context = self._context

        listening.sni_callback = switch
        return listening
