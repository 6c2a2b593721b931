"""The gateway's one settings object, filled from CLI flags and ``TRITONE_*`` variables."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritone_server.audio.formats import AudioLimits
from tritone_server.triton.resolver import TritonTarget

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the gateway can be told. Flags win over ``TRITONE_*`` variables."""

    host: str = "127.0.0.1"
    port: int = 50051
    http_port: int | None = 8080
    """Port of the HTTP side (HF-compatible route, /metrics, /healthz); None disables it."""
    health_port: int | None = None
    """Serve grpc.health.v1 also on its own plaintext port, so probes (which have no client
    certificate and no token) survive mTLS, tokens and a saturated main port."""
    metrics_port: int | None = None
    """Serve /metrics on its own plaintext HTTP port (and no longer on http_port), so it is
    not exposed with the API."""
    tls_cert: Path | None = None
    """PEM certificate chain: TLS on the gRPC and HTTP ports (with tls_key)."""
    tls_key: Path | None = None
    """PEM private key of tls_cert."""
    tls_client_ca: Path | None = None
    """PEM CA bundle: callers must present a client certificate it signed (mTLS)."""
    token_file: Path | None = None
    """Bearer tokens, one a line: every RPC and HTTP route but health needs one of them."""
    admin_token_file: Path | None = None
    """Bearer tokens, one a line, that LoadModel needs (a token_file token is refused)."""
    triton_urls: tuple[str, ...] = ()
    """Existing Triton gRPC endpoints: ``host:port``, or ``dns:///name:port`` for every
    address the name resolves to (a headless Service), followed as the answer changes.
    Empty means: start a local Triton on model_repository."""
    triton_tls_ca: Path | None = None
    """PEM CA bundle: reach Triton over TLS (Triton's --grpc-use-ssl) and trust the
    certificates it signed. None: plaintext."""
    triton_tls_server_name: str = ""
    """The name each Triton's certificate must carry, whatever address was dialled (pod IPs
    found through a headless Service): e.g. tritone-triton-headless. Empty: the address."""
    triton_resolve_s: float = 10.0
    """How often ``dns:///`` Triton URLs are resolved again: an added Triton gets requests
    within this (plus a 0.25 s health check), a removed one is drained."""
    model_refresh_s: float = 30.0
    """How often the model list is read again from every ready Triton (also at once when
    the set of ready Tritons changes): a model loaded through another gateway, or by a
    Triton's own repository, is listed within this. A model is listed only when every ready
    Triton has it READY. 0: only when the ready Tritons change, at start and after LoadModel."""
    model_repository: Path = REPO_ROOT / "model_repository"
    default_model: str = "voice-activity"
    """Model of requests that name none: voice activity answers any speech usefully (measured
    on real recordings), where `tones` is a test model and speech-commands knows ten words."""
    channels_per_endpoint: int = 2
    triton_timeout_s: float = 30.0
    triton_startup_timeout_s: float = 180.0
    grace_s: float = 5.0
    """On SIGTERM, how long calls in flight (HTTP included) get to finish after the drain."""
    drain_s: float = 2.0
    """On SIGTERM, how long the gateway keeps serving while NOT_SERVING reaches the load
    balancers, before it refuses new calls. drain_s + grace_s + Triton's stop fit in
    Kubernetes' default 30 s grace period."""
    max_message_bytes: int = 16 * 1024 * 1024
    """Largest gRPC message in either direction; a larger one is refused by gRPC with
    RESOURCE_EXHAUSTED before the gateway sees it. 16 MiB is 8.7 minutes of 16 kHz 16-bit
    mono, WAV; longer audio goes through StreamClassify. gRPC holds a unary message whole
    (about 3x its size at the peak, measured) before the handler runs, so callers with a
    token can make a pod hold about connections x 3 x this (benchmarks/
    unauthenticated_memory.py); callers without one nothing (auth refuses before reading)."""
    max_connection_age_s: float = 300.0
    """Callers' connections get GOAWAY after about this long (0: never), so clients with
    ``round_robin`` re-resolve and spread over gateways added since; calls in flight go on."""
    max_connection_age_grace_s: float = 3600.0
    """How long calls may go on on a connection past its age before it is closed: as long
    as a stream may last (max_stream_s), so ageing never cuts a stream short."""
    stream_queue_chunks: int = 64
    """Bounded queue between a stream's reader and its classifier, in chunks."""
    max_streams: int = 256
    """StreamClassify calls at once; one more is refused with RESOURCE_EXHAUSTED."""
    max_unary_calls: int = 64
    """Classify and Embed calls at once; one more is refused with RESOURCE_EXHAUSTED."""
    max_stream_s: float = 3600.0
    """Wall-clock length of one stream."""
    stream_idle_s: float = 30.0
    """Longest wait for a stream's next message."""
    config_timeout_s: float = 10.0
    """Longest wait for a stream's first message, the StreamConfig."""
    max_chunk_bytes: int = 1024 * 1024
    """Audio bytes in one stream message (far below max_message_bytes: bounds the work one
    message can cause)."""
    max_queued_bytes: int = 4 * 1024 * 1024
    """Audio bytes of one stream read and not yet classified; the reader waits above it."""
    decode_queue: int = 64
    """Decode requests waiting for a free decode worker; one more is refused."""
    decode_worker_memory_mb: int = 2048
    """Address-space limit (RLIMIT_AS) of each decode worker process; 0: none."""
    batch_delay_ms: float = 2.0
    """How long a window may wait for windows of other streams to share its Triton request;
    0 sends every request as it comes."""
    batch_busy_hold_ms: float = 0.0
    """How much longer a batch may wait while every Triton endpoint already runs a request
    of its model: it is sent when one comes back, with the windows that came meanwhile; 0:
    never held."""
    decode_workers: int = 2
    audio_limits: AudioLimits = field(default_factory=AudioLimits)
    log_level: str = "INFO"
    log_json: bool = False

    @property
    def max_clip_bytes(self) -> int:
        """The most audio one unary call carries, on gRPC and HTTP alike."""
        return min(self.audio_limits.max_encoded_bytes, self.max_message_bytes)


_ENV_PREFIX = "TRITONE_"
_LIMIT_KEYS = ("max_duration_s", "decode_timeout_s")
_OPTIONAL_PATHS = frozenset(
    {"tls_cert", "tls_key", "tls_client_ca", "token_file", "admin_token_file", "triton_tls_ca"}
)


def _convert(name: str, raw: str) -> Any:
    template = Settings()
    current = getattr(template, name)
    if name == "triton_urls":
        return tuple(u.strip() for u in raw.split(",") if u.strip())
    if isinstance(current, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(current, Path):
        return Path(raw)
    if name in _OPTIONAL_PATHS:
        return Path(raw) if raw.strip() else None
    if name in {"http_port", "health_port", "metrics_port"}:
        return None if raw.strip().lower() in {"", "none", "off", "0"} else int(raw)
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    return raw


def _simple_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(Settings) if f.name != "audio_limits"]


def environment_names() -> frozenset[str]:
    """Every ``TRITONE_*`` variable the gateway reads (manifests are checked against it)."""
    names = {_ENV_PREFIX + name.upper() for name in _simple_fields()}
    return frozenset(names | {_ENV_PREFIX + key.upper() for key in _LIMIT_KEYS})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tritone serve",
        description="Run the Tritone gateway (and a local Triton unless --triton-url is given).",
    )
    for name in _simple_fields():
        flag = "--" + name.replace("_", "-")
        if name == "triton_urls":
            parser.add_argument(
                "--triton-url",
                dest=name,
                action="append",
                help="gRPC address of an existing Triton, host:port or dns:///name:port for "
                "every address behind a name (repeatable); default: start one locally",
            )
        elif isinstance(getattr(Settings(), name), bool):
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction)
        else:
            parser.add_argument(flag, dest=name, type=str, metavar=name.upper())
    parser.add_argument("--max-duration-s", dest="max_duration_s", type=float)
    parser.add_argument("--decode-timeout-s", dest="decode_timeout_s", type=float)
    return parser


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from flags over environment over defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name in _simple_fields():
        raw = env.get(_ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _convert(name, raw)
    args = build_parser().parse_args(list(argv or []))
    for name in _simple_fields():
        given = getattr(args, name)
        if given is None:
            continue
        if name == "triton_urls":
            values[name] = tuple(given)
        elif isinstance(given, bool):
            values[name] = given
        else:
            values[name] = _convert(name, given)
    limit_values: dict[str, float] = {}
    for key in _LIMIT_KEYS:
        raw_limit = getattr(args, key) or env.get(_ENV_PREFIX + key.upper())
        if raw_limit is not None:
            limit_values[key] = float(raw_limit)
    values["audio_limits"] = AudioLimits(**limit_values)  # type: ignore[arg-type]
    settings = Settings(**values)
    problem = transport_problem(settings) or triton_url_problem(settings)
    if problem is not None:
        build_parser().error(problem)
    return settings


def triton_url_problem(settings: Settings) -> str | None:
    """A sentence saying which Triton URL cannot be used, or None."""
    for url in settings.triton_urls:
        try:
            TritonTarget.parse(url)
        except ValueError as exc:
            return str(exc)
    return None


def transport_problem(settings: Settings) -> str | None:
    """A sentence saying why the TLS settings cannot work together, or None."""
    if (settings.tls_cert is None) != (settings.tls_key is None):
        return "--tls-cert and --tls-key go together: give both or neither"
    if settings.tls_client_ca is not None and settings.tls_cert is None:
        return "--tls-client-ca (mTLS) needs --tls-cert and --tls-key"
    if settings.triton_tls_server_name and settings.triton_tls_ca is None:
        return "--triton-tls-server-name needs --triton-tls-ca (TLS to Triton)"
    if settings.triton_tls_ca is not None and not settings.triton_urls:
        return "--triton-tls-ca needs --triton-url: the local Triton is reached over loopback"
    return None
