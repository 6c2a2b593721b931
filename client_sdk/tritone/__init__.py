"""Tritone: audio classification over gRPC.

Example:
    >>> from tritone import AsyncClient
    >>> async with AsyncClient("127.0.0.1:50051") as client:
    ...     result = await client.classify("dog.wav")
"""

from tritone._client import AsyncClient
from tritone._config import DEFAULT, TimeoutTypes, TlsConfig, UseClientDefault
from tritone._stream import AudioStream
from tritone._sync_client import Client
from tritone._version import __version__
from tritone.errors import (
    CallCancelledError,
    ClientClosedError,
    DeadlineExceededError,
    InternalError,
    InvalidArgumentError,
    ModelNotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    StatusCode,
    StreamStateError,
    TritoneError,
    UnauthenticatedError,
    UnavailableError,
    UsageError,
)
from tritone.types import (
    Activation,
    AudioChunk,
    AudioInput,
    ClassifyResult,
    Detection,
    Embedding,
    LabelScore,
    ModelInfo,
    ModelSummary,
    PcmEncoding,
    RawPcm,
    Segment,
    SpeechSegment,
    StreamEvent,
    StreamSummary,
    Utterance,
    WindowResult,
)

__all__ = [
    "DEFAULT",
    "Activation",
    "AsyncClient",
    "AudioChunk",
    "AudioInput",
    "AudioStream",
    "CallCancelledError",
    "ClassifyResult",
    "Client",
    "ClientClosedError",
    "DeadlineExceededError",
    "Detection",
    "Embedding",
    "InternalError",
    "InvalidArgumentError",
    "LabelScore",
    "ModelInfo",
    "ModelNotFoundError",
    "ModelSummary",
    "PcmEncoding",
    "PermissionDeniedError",
    "RawPcm",
    "ResourceExhaustedError",
    "Segment",
    "SpeechSegment",
    "StatusCode",
    "StreamEvent",
    "StreamStateError",
    "StreamSummary",
    "TimeoutTypes",
    "TlsConfig",
    "TritoneError",
    "UnauthenticatedError",
    "UnavailableError",
    "UsageError",
    "UseClientDefault",
    "Utterance",
    "WindowResult",
    "__version__",
]

# Tracebacks and reprs say `tritone.ModelNotFoundError`, not the private module.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = "tritone"
del _name, _obj
