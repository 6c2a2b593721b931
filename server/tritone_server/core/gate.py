"""Voice activity as a gate: where the speech is, and whether a window is near it.

The gate model's stream hands every hop's speech probability to `SpeechGate.observe`, in
stream order. Consecutive hops at or above the threshold make one speech segment; the gate
reports it when it starts and when it ends. A gated model asks `SpeechGate.speech_near`
about each of its windows: True when the window overlaps a segment widened by the padding
on both sides, False when it does not, None while the gate has not heard far enough past
the window to tell (the gated model waits; it never guesses).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_GATE_PADDING_MS", "DEFAULT_GATE_THRESHOLD", "MAX_GATE_PADDING_MS", "SpeechGate"]

DEFAULT_GATE_THRESHOLD = 0.5
DEFAULT_GATE_PADDING_MS = 200
MAX_GATE_PADDING_MS = 5000
"""More padding than this would keep whole minutes of a gated model's windows waiting."""


@dataclass(frozen=True, slots=True)
class SegmentChange:
    """Speech started (``final`` False, ``end_s`` where it was last heard) or ended."""

    start_s: float
    end_s: float
    final: bool


class SpeechGate:
    """Speech segments from per-hop probabilities, and the gating decision they give."""

    def __init__(self, threshold: float, padding_s: float) -> None:
        self.threshold = threshold
        self.padding_s = padding_s
        self.segments: list[tuple[float, float]] = []
        """Closed segments, in order."""
        self.open_start: float | None = None
        self.open_end = 0.0
        self.heard_s = 0.0
        """Stream time up to which every hop has been observed."""
        self.finished = False

    @property
    def count(self) -> int:
        """Segments found so far, the open one included."""
        return len(self.segments) + (self.open_start is not None)

    def observe(self, probability: float, start_s: float, end_s: float) -> SegmentChange | None:
        """One hop's speech probability; the change it makes, if any."""
        self.heard_s = max(self.heard_s, end_s)
        if probability >= self.threshold:
            self.open_end = end_s
            if self.open_start is None:
                self.open_start = start_s
                return SegmentChange(start_s, end_s, final=False)
            return None
        return self._close(start_s)

    def finish(self, end_s: float) -> SegmentChange | None:
        """The gate model has heard the whole stream; close an open segment at ``end_s``."""
        self.finished = True
        self.heard_s = math.inf
        return self._close(max(end_s, self.open_end))

    def _close(self, end_s: float) -> SegmentChange | None:
        start = self.open_start
        if start is None:
            return None
        self.open_start = None
        self.segments.append((start, end_s))
        return SegmentChange(start, end_s, final=True)

    def speech_near(self, start_s: float, end_s: float) -> bool | None:
        """Whether [start_s, end_s) overlaps speech widened by the padding; None until the
        gate has heard up to ``end_s`` plus the padding."""
        pad = self.padding_s
        lo, hi = start_s - pad, end_s + pad
        if self.open_start is not None and self.open_start < hi and self.open_end > lo:
            return True  # speech heard inside the padded window (it may go on: no matter)
        for seg_start, seg_end in reversed(self.segments):
            if seg_end <= lo:
                break  # segments are in order: every earlier one ends earlier still
            if seg_start < hi:
                return True
        if self.heard_s < hi:
            return None
        return False

    def segment_index(self, start_s: float, end_s: float) -> int:
        """The first segment (in order; the open one last) that [start_s, end_s) is near;
        -1 for none."""
        lo, hi = start_s - self.padding_s, end_s + self.padding_s
        found = -1
        if self.open_start is not None and self.open_start < hi and self.open_end > lo:
            found = len(self.segments)
        for i in range(len(self.segments) - 1, -1, -1):  # from the latest, as speech_near
            seg_start, seg_end = self.segments[i]
            if seg_end <= lo:
                break
            if seg_start < hi:
                found = i
        return found

    def segment_bounds(self, index: int) -> tuple[float, float]:
        """Start and end of segment ``index`` (the open one: where speech was last heard)."""
        if 0 <= index < len(self.segments):
            return self.segments[index]
        return (self.open_start or 0.0), self.open_end
