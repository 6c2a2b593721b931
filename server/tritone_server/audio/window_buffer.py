"""A live stream's samples, addressed by their index in the stream, with windows as views.

Appending a chunk copies it once into spare room at the end of a preallocated array; when
the room runs out, the few samples still needed (less than a window and a hop) move to the
front, or the array doubles if a chunk is larger than it. So a stream costs no
re-concatenation of its buffer per chunk, and the windows a chunk completes are one strided
view (no copy) over the array.

Views stay valid until the next `append`: the caller classifies a chunk's windows before it
appends the next chunk.
"""

from __future__ import annotations

import numpy as np

from tritone_server.audio.formats import Float32Array

__all__ = ["WindowBuffer"]


class WindowBuffer:
    __slots__ = ("_buf", "_first", "_head", "_tail")

    def __init__(self, capacity: int, leading_zeros: int = 0) -> None:
        self._buf: Float32Array = np.zeros(max(capacity, leading_zeros, 1), dtype=np.float32)
        self._first = 0  # stream index of _buf[_head]
        self._head = 0
        self._tail = leading_zeros  # the zeros are already there

    @property
    def start(self) -> int:
        """Stream index of the oldest sample kept."""
        return self._first

    @property
    def end(self) -> int:
        """Stream index one past the newest sample."""
        return self._first + self._tail - self._head

    def append(self, samples: Float32Array) -> None:
        n = int(samples.shape[0])
        if n == 0:
            return
        if self._tail + n > self._buf.shape[0]:
            live = self._tail - self._head
            if live + n > self._buf.shape[0] // 2:
                grown = np.empty(2 * (live + n), dtype=np.float32)
                grown[:live] = self._buf[self._head : self._tail]
                self._buf = grown
            else:
                self._buf[:live] = self._buf[self._head : self._tail]
            self._head, self._tail = 0, live
        self._buf[self._tail : self._tail + n] = samples
        self._tail += n

    def discard_before(self, index: int) -> None:
        """Forget samples before stream index `index` (never past the end)."""
        drop = min(index, self.end) - self._first
        if drop > 0:
            self._head += drop
            self._first += drop

    def window(self, start: int, length: int) -> Float32Array:
        """Samples [start, start + length), zero-padded past the end (a view when whole)."""
        local = self._head + start - self._first
        part = self._buf[local : min(local + length, self._tail)]
        if part.shape[0] == length:
            return part
        return np.pad(part, (0, length - part.shape[0]))

    def windows(self, first: int, count: int, hop: int, length: int) -> Float32Array:
        """[count, length]: windows starting at first, first + hop, ...; a strided view
        when they all lie within the samples kept, else zero-padded copies."""
        last_end = first + (count - 1) * hop + length
        local = self._head + first - self._first
        if first >= self._first and last_end <= self.end:
            step = self._buf.strides[0]
            view: Float32Array = np.lib.stride_tricks.as_strided(
                self._buf[local:],
                shape=(count, length),
                strides=(hop * step, step),
                writeable=False,
            )
            return view
        return np.stack([self.window(first + i * hop, length) for i in range(count)])
