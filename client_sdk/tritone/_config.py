"""Client configuration: timeouts and the default sentinel, TLS, channel options."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import grpc

from tritone.errors import invalid_argument

__all__ = ["DEFAULT", "TimeoutTypes", "TlsConfig", "UseClientDefault"]

DEFAULT_TIMEOUT_S: Final = 30.0
"""Deadline of a unary call when neither the client nor the call sets one."""

DEFAULT_RETRIES: Final = 3
"""Retries of a unary call that failed with UNAVAILABLE, after the first attempt."""

DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
"""Largest message sent or received: a whole clip travels in one ClassifyRequest."""

SERVICE: Final = "tritone.v1.AudioClassification"
UNARY_METHODS: Final = ("Classify", "Embed", "ListModels", "GetModel", "LoadModel")
LOAD_BALANCING_POLICIES: Final = ("pick_first", "round_robin")
"""gRPC's built-in policies: one connection at a time, or calls spread over every address."""


class UseClientDefault(enum.Enum):
    """The type of `DEFAULT`, the value of a per-call argument that was left out.

    A per-call ``timeout=None`` means "no deadline", so None cannot also mean "use the
    client's setting". Leaving the argument out passes `DEFAULT`, which does::

        client = AsyncClient("gateway:50051", timeout=10.0)
        await client.classify(clip)                # 10 s deadline: the client's
        await client.classify(clip, timeout=60.0)  # 60 s for this call
        await client.classify(clip, timeout=None)  # no deadline for this call
    """

    DEFAULT = "DEFAULT"

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = UseClientDefault.DEFAULT
"""Leave a per-call setting to the client; see `UseClientDefault`."""

TimeoutTypes = float | None | UseClientDefault
"""A per-call timeout: seconds, None for no deadline, or `DEFAULT` for the client's."""


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS settings of a client channel, as PEM bytes (the SDK reads no files).

    `AsyncClient(tls=True)` is the same as `TlsConfig()`: the system's root certificates,
    no client certificate.
    """

    root_certificates: bytes | None = None
    """PEM roots that verify the server; None uses the system's (or gRPC's bundled) roots."""
    private_key: bytes | None = None
    """PEM private key of a client certificate, for mutual TLS."""
    certificate_chain: bytes | None = None
    """PEM certificate chain matching `private_key`."""
    server_name_override: str | None = None
    """Name checked against the server certificate instead of the target's host (tests)."""

    def __post_init__(self) -> None:
        if (self.private_key is None) != (self.certificate_chain is None):
            raise ValueError("TlsConfig needs both private_key and certificate_chain, or neither")


def resolve_timeout(timeout: TimeoutTypes, client_timeout: float | None) -> float | None:
    """The deadline in seconds for one call, or None for none."""
    if timeout is DEFAULT:
        return client_timeout
    if timeout is not None and not timeout > 0:
        raise invalid_argument(f"timeout must be > 0 seconds or None, got {timeout!r}")
    return timeout


def tls_config(tls: TlsConfig | bool | None) -> TlsConfig | None:
    """Normalize the `tls` argument: None and False mean plaintext."""
    if tls is None or tls is False:
        return None
    if tls is True:
        return TlsConfig()
    if isinstance(tls, TlsConfig):
        return tls
    raise TypeError(f"tls must be a TlsConfig, a bool or None, not {type(tls).__name__}")


def channel_credentials(tls: TlsConfig, token: str | None) -> Any:
    """TLS channel credentials, composed with per-call bearer-token credentials if given."""
    creds = grpc.ssl_channel_credentials(
        root_certificates=tls.root_certificates,
        private_key=tls.private_key,
        certificate_chain=tls.certificate_chain,
    )
    if token is not None:
        # Sends `authorization: Bearer <token>` on every call, over TLS only.
        creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(token))
    return creds


def check_load_balancing(load_balancing: str | None) -> str | None:
    """The policy name, or ValueError for one gRPC does not have built in."""
    if load_balancing is not None and load_balancing not in LOAD_BALANCING_POLICIES:
        raise ValueError(
            f"load_balancing must be one of {list(LOAD_BALANCING_POLICIES)} or None, "
            f"got {load_balancing!r}"
        )
    return load_balancing


def service_config(retries: int, load_balancing: str | None = None) -> str:
    """The gRPC service config: retry unary calls that fail with UNAVAILABLE, and the
    load-balancing policy if one is asked for.

    Only unary calls are retried: a stream that failed mid-way cannot be replayed, so its
    caller decides. gRPC caps attempts at 5 (retries=4); larger values are clamped by it.
    ``round_robin`` keeps a connection to every address the target resolves to and sends
    each call (a whole stream counts as one) to the next: with ``dns:///gateway:50051`` and
    a headless Service, calls spread over every gateway pod.
    """
    names = [{"service": SERVICE, "method": m} for m in UNARY_METHODS]
    method_config: dict[str, Any] = {"name": names}
    if retries > 0:
        method_config["retryPolicy"] = {
            "maxAttempts": retries + 1,
            "initialBackoff": "0.1s",
            "maxBackoff": "2s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    config: dict[str, Any] = {"methodConfig": [method_config]}
    if load_balancing is not None:
        config["loadBalancingConfig"] = [{load_balancing: {}}]
    return json.dumps(config)


def channel_options(
    *,
    retries: int,
    tls: TlsConfig | None,
    user_options: Sequence[tuple[str, Any]] | None,
    user_agent: str,
    load_balancing: str | None = None,
) -> list[tuple[str, Any]]:
    """Channel arguments: ours first, then the caller's, which win on the same key.

    Returns a new list; the caller's sequence is never modified.
    """
    options: dict[str, Any] = {
        "grpc.max_send_message_length": DEFAULT_MAX_MESSAGE_BYTES,
        "grpc.max_receive_message_length": DEFAULT_MAX_MESSAGE_BYTES,
        "grpc.enable_retries": 1 if retries > 0 else 0,
        "grpc.service_config": service_config(retries, load_balancing),
        # Ping the server after 60 s without traffic on an open call, so a dead
        # connection under a quiet live stream is noticed; give up 20 s after the ping.
        "grpc.keepalive_time_ms": 60_000,
        "grpc.keepalive_timeout_ms": 20_000,
        # No pings while no call is open: servers answer idle pings with GOAWAY.
        "grpc.keepalive_permit_without_calls": 0,
        "grpc.primary_user_agent": user_agent,
    }
    if tls is not None and tls.server_name_override is not None:
        options["grpc.ssl_target_name_override"] = tls.server_name_override
    for key, value in user_options or ():
        options[key] = value
    return list(options.items())
