"""Per-segment answers: a classifier answers once per speech segment the gate finds.

A person says one command and stops; the Speech Commands task is one word in a one-second
clip. So instead of a result per sliding window, a per-segment model gathers the windows it
classified near one speech segment (they come in stream order), and when the segment is over
(its next window belongs elsewhere, or the stream ends) answers with one of them: its
labels, and where that window lies. The preferred window is the one holding the most energy
(sum of squared samples): the one-second clip that holds most of the utterance, cut as the
data set cuts its clips. Not the most confident window: the windows that overhang the
segment into the pause are confidently ``silence`` and would win (on the evaluation set's
isolated words, the most confident window was ``silence`` for 8 of 10 words). A segment much
longer than the model's window is not one command: it gets no labels, and says it was too
long.
"""

from __future__ import annotations

from dataclasses import dataclass

from tritone_server.core.gate import SpeechGate
from tritone_server.core.scoring import FloatArray, top_k

__all__ = ["MAX_UTTERANCE_WINDOWS", "Utterance", "UtteranceCollector"]

MAX_UTTERANCE_WINDOWS = 1.5
"""A segment longer than this many of the model's windows is not one utterance."""


@dataclass(frozen=True, slots=True)
class Utterance:
    start_s: float
    end_s: float
    labels: list[tuple[str, float]]
    """The preferred window's labels, best first; empty when the segment was too long."""
    window_start_s: float
    window_end_s: float
    too_long: bool


class UtteranceCollector:
    """The windows of one model near the current speech segment."""

    def __init__(self, gate: SpeechGate, labels: tuple[str, ...], k: int, window_s: float) -> None:
        self.gate = gate
        self.labels = labels
        self.k = k
        self.max_s = MAX_UTTERANCE_WINDOWS * window_s
        self.segment: int | None = None
        self.best: tuple[float, float, float, FloatArray] | None = None  # energy, start, end, row

    def add(self, row: FloatArray, start_s: float, end_s: float, energy: float) -> list[Utterance]:
        """A classified window and its energy; the utterance it closes, if it starts another
        segment."""
        segment = self.gate.segment_index(start_s, end_s)
        done = self.flush() if segment != self.segment else []
        self.segment = segment
        if self.best is None or energy > self.best[0]:
            self.best = (energy, start_s, end_s, row)
        return done

    def flush(self) -> list[Utterance]:
        """The answer for the segment gathered so far (none if nothing was gathered)."""
        best, segment = self.best, self.segment
        self.best, self.segment = None, None
        if best is None or segment is None:
            return []
        start_s, end_s = self.gate.segment_bounds(segment)
        _, window_start, window_end, row = best
        too_long = end_s - start_s > self.max_s
        labels = [] if too_long else top_k(row, self.labels, self.k)
        return [Utterance(start_s, end_s, labels, window_start, window_end, too_long)]
