"""Moved to `tritone_server.core.stream_watchdog` (the stream's life is in core/)."""

from tritone_server.core.stream_watchdog import StreamWatchdog

__all__ = ["StreamWatchdog"]
