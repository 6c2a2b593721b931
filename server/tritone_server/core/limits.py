"""The gateway's own limits on calls and streams, and the counters that enforce them.

Audio limits (duration, rate, decoded size) live with the audio in ``audio.formats``; these
are about what one gateway pod can hold at once and how long a caller may hold it. Every
refusal is a `LimitExceeded` whose sentence names the limit and the setting that raises it
(flag and ``TRITONE_*`` variable), so the caller's error tells an operator what to change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from tritone_server.errors import LimitExceeded

__all__ = ["MIN_HOP_MS", "Admission", "StreamLimits", "setting_names"]

MIN_HOP_MS = 10
"""The shortest hop a stream may ask for; below it Triton work grows without new audio."""


def setting_names(name: str) -> str:
    """How an operator sets ``name``: "--max-streams / TRITONE_MAX_STREAMS"."""
    return f"--{name.replace('_', '-')} / TRITONE_{name.upper()}"


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Per-stream limits, enforced by the gRPC front end while it reads a stream."""

    max_stream_s: float = 3600.0
    """Wall-clock length of one stream."""
    stream_idle_s: float = 30.0
    """Longest wait for the next message of a stream."""
    config_timeout_s: float = 10.0
    """Longest wait for a stream's first message, the StreamConfig."""
    max_chunk_bytes: int = 1024 * 1024
    """Audio bytes in one stream message."""
    max_queued_bytes: int = 4 * 1024 * 1024
    """Audio bytes read from one stream and not yet classified; the reader waits above it."""
    max_queued_chunks: int = 64
    """Messages read from one stream and not yet classified."""

    def __post_init__(self) -> None:
        for name in ("max_stream_s", "stream_idle_s", "config_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        if self.max_chunk_bytes < 1 or self.max_queued_chunks < 1:
            raise ValueError("max_chunk_bytes and max_queued_chunks must be positive")
        if self.max_queued_bytes < self.max_chunk_bytes:
            raise ValueError("max_queued_bytes must hold at least one chunk (max_chunk_bytes)")

    def check_chunk(self, size: int) -> None:
        if size > self.max_chunk_bytes:
            raise LimitExceeded(
                f"a stream message carries {size} bytes of audio; the limit is "
                f"{self.max_chunk_bytes} bytes per message (max_chunk_bytes, set by "
                f"{setting_names('max_chunk_bytes')}): send smaller chunks",
                limit="chunk_bytes",
            )

    def idle_error(self) -> LimitExceeded:
        return LimitExceeded(
            f"no message arrived on the stream for {self.stream_idle_s:g} s, the limit for an "
            f"idle stream (stream_idle_s, set by {setting_names('stream_idle_s')})",
            limit="stream_idle",
        )

    def config_error(self) -> LimitExceeded:
        return LimitExceeded(
            f"the stream sent no StreamConfig within {self.config_timeout_s:g} s "
            f"(config_timeout_s, set by {setting_names('config_timeout_s')})",
            limit="config_timeout",
        )

    def duration_error(self) -> LimitExceeded:
        return LimitExceeded(
            f"the stream has been open for its limit of {self.max_stream_s:g} s "
            f"(max_stream_s, set by {setting_names('max_stream_s')}); open a new stream "
            "to go on",
            limit="stream_duration",
        )


class Admission:
    """Counts calls of one kind in progress and refuses the one over ``limit``.

    No queue: a caller refused at once can go to another replica, while one queued here
    would wait behind work this pod already cannot keep up with.
    """

    def __init__(self, limit: int, *, what: str, setting: str) -> None:
        if limit < 1:
            raise ValueError(f"{setting} must be at least 1")
        self.limit = limit
        self.what = what
        self.setting = setting
        self.active = 0

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        if self.active >= self.limit:
            raise LimitExceeded(
                f"the gateway already runs {self.active} {self.what}, its limit "
                f"({self.setting}, set by {setting_names(self.setting)}); retry later or "
                "on another replica",
                limit=self.setting,
            )
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


def unary_calls(limit: int = 64) -> Admission:
    """The admission gRPC's unary calls and HTTP classify calls share (``max_unary_calls``)."""
    return Admission(limit, what="unary calls", setting="max_unary_calls")
