"""Moved to `tritone_server.core.stream_queue` (the stream's life is in core/)."""

from tritone_server.core.stream_queue import END, STOPPED, ChunkQueue

__all__ = ["END", "STOPPED", "ChunkQueue"]
