"""What a stream's first message asks for, as the core reads it (no wire types)."""

from __future__ import annotations

from dataclasses import dataclass

from tritone_server.audio.formats import PcmFormat
from tritone_server.core.streams import StreamOptions

__all__ = ["GateRequest", "StreamRequest"]


@dataclass(frozen=True, slots=True)
class GateRequest:
    """Voice activity decides when the stream's other models run."""

    model: str
    threshold: float = 0.0
    """Speech probability at or above which a hop is speech; 0 means the default."""
    padding_ms: int | None = None
    """Audio kept before and after speech; None means the default."""


@dataclass(frozen=True, slots=True)
class StreamRequest:
    models: tuple[str, ...]
    """The models to run; one name ("" for the default) in the plain form."""
    format: PcmFormat
    options: StreamOptions
    gate: GateRequest | None = None
    per_segment: tuple[str, ...] = ()
    """Gated models (among ``models``) that answer once per speech segment."""
    several: bool = False
    """The caller named several models (or a gate): events name their model and the summary
    accounts per model. False keeps the one-model stream exactly as it always was."""
