"""Windows to scores: the Triton side of the core (the DataPlane is the core itself).

It sees windows only (the DataPlane prepares and cuts clips, `streams` cuts live audio):
windows go to the backend in batches no larger than the model's max_batch_size; stateful
models run window after window with their state carried here, so Triton replicas stay
stateless.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tritone_server.core.batching import MicroBatcher
from tritone_server.core.clips import ClipWindows
from tritone_server.core.models import Activation, ModelSpec
from tritone_server.core.scoring import FloatArray, activate, pool
from tritone_server.errors import DeadlineExceeded
from tritone_server.metrics import Metrics
from tritone_server.triton.backend import InferenceBackend

State = dict[str, npt.NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class ClipScores:
    scores: FloatArray
    """Clip-level scores, one per label (or the pooled embedding)."""
    window_scores: FloatArray
    """[windows, labels] scores."""
    window_starts: tuple[int, ...]
    samples: int
    """Samples at the model's rate."""
    sample_rate: int
    context: int = 0
    """Zeros put before the clip for a model with context_samples; starts count them."""

    def window_span(self, index: int, window: int) -> tuple[float, float]:
        """Start and end in seconds of the clip's own audio that window ``index`` classified."""
        start = self.window_starts[index]
        end = min(start + window, self.samples + self.context) if window else self.samples
        return start / self.sample_rate, max(end - self.context, 0) / self.sample_rate


def initial_state(spec: ModelSpec, batch: int = 1) -> State:
    return {s.input_name: np.zeros((batch, *s.shape), dtype=np.float32) for s in spec.states}


class Inference:
    def __init__(
        self,
        backend: InferenceBackend,
        *,
        timeout_s: float | None = 30.0,
        metrics: Metrics | None = None,
        batcher: MicroBatcher | None = None,
    ) -> None:
        self.backend = backend
        self.timeout_s = timeout_s
        self.metrics = metrics or Metrics()
        self.batcher = batcher
        self._clips_in_flight: dict[str, int] = {}

    async def _infer(
        self,
        spec: ModelSpec,
        inputs: dict[str, FloatArray],
        outputs: list[str],
        timeout_s: float | None,
        merge: bool = True,
    ) -> dict[str, FloatArray]:
        # A request may carry windows of many callers (batching): it runs under the
        # gateway's own timeout, never one caller's deadline, so a caller with little time
        # left neither fails the others' windows nor makes the endpoint look unavailable.
        # Each caller waits for its share only as long as its own deadline allows.
        async def send(merged: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
            with self.metrics.stage("triton", spec.name):
                return await self.backend.infer(
                    spec.name, merged, outputs, timeout_s=self.timeout_s
                )

        if self.batcher is None or not merge:
            share = send(inputs)
        else:
            share = self.batcher.submit(
                spec.name, inputs, outputs, max_batch=spec.max_batch_size, send=send
            )
        if timeout_s is None or (self.timeout_s is not None and timeout_s >= self.timeout_s):
            return await share
        try:
            # asyncio.timeout, not wait_for: before Python 3.12 wait_for can swallow a
            # cancellation of this task that lands as the answer arrives.
            async with asyncio.timeout(timeout_s):
                return await share
        except TimeoutError:
            raise DeadlineExceeded(
                f"the call's deadline ({timeout_s:.3f} s) passed before Triton answered"
            ) from None

    async def run(
        self,
        spec: ModelSpec,
        windows: FloatArray,
        state: State | None = None,
        *,
        timeout_s: float | None = None,
        merge: bool = True,
    ) -> tuple[FloatArray, State]:
        """Raw outputs for [n, samples] windows and, for stateful models, the next state.

        ``merge``: let the micro-batcher merge these windows with other callers' (live
        streams, or clips while others are in flight); False sends at once."""
        timeout = _shorter(timeout_s, self.timeout_s)
        if spec.stateful:
            return await self._run_stateful(spec, windows, state, timeout, merge)
        step = spec.max_batch_size
        outputs = [spec.output_name]
        if windows.shape[0] <= step:  # the usual case: no task to gather
            result = await self._infer(spec, {"waveform": windows}, outputs, timeout, merge)
            return result[spec.output_name].astype(np.float32, copy=False), {}
        parts = [windows[i : i + step] for i in range(0, windows.shape[0], step)]
        results = await asyncio.gather(
            *(self._infer(spec, {"waveform": p}, outputs, timeout, merge) for p in parts)
        )
        logits = np.concatenate([r[spec.output_name] for r in results], axis=0)
        return logits.astype(np.float32, copy=False), {}

    async def _run_stateful(
        self,
        spec: ModelSpec,
        windows: FloatArray,
        state: State | None,
        timeout_s: float | None,
        merge: bool = True,
    ) -> tuple[FloatArray, State]:
        current = state if state is not None else initial_state(spec)
        outputs = [spec.output_name, *(s.output_name for s in spec.states)]
        rows = []
        if spec.window_runs:
            for run in _runs(windows, spec.window_samples - spec.hop_samples, spec.window_runs):
                run_inputs = {"waveform": run, **current}
                result = await self._infer(spec, run_inputs, outputs, timeout_s, merge)
                scores = result[spec.output_name]
                rows.append(scores.reshape(scores.shape[1], -1))  # [1, n, labels] -> [n, labels]
                current = {s.input_name: result[s.output_name] for s in spec.states}
            return np.concatenate(rows, axis=0).astype(np.float32, copy=False), current
        for i in range(windows.shape[0]):
            inputs: dict[str, FloatArray] = {"waveform": windows[i : i + 1], **current}
            result = await self._infer(spec, inputs, outputs, timeout_s, merge)
            rows.append(result[spec.output_name])
            current = {s.input_name: result[s.output_name] for s in spec.states}
        return np.concatenate(rows, axis=0).astype(np.float32, copy=False), current

    async def classify_clip(
        self,
        spec: ModelSpec,
        clip: ClipWindows,
        activation: Activation | None = None,
        *,
        timeout_s: float | None = None,
    ) -> ClipScores:
        """Scores of a clip's windows, per window and pooled.

        A lone clip goes to Triton at once; while other clips of the model are in flight,
        it may share a request with them (the micro-batcher), which saves a gRPC round
        trip per clip when the gateway is busy and costs at most the batch delay then."""
        busy = self._clips_in_flight.get(spec.name, 0) > 0
        self._clips_in_flight[spec.name] = self._clips_in_flight.get(spec.name, 0) + 1
        try:
            logits, _ = await self.run(spec, clip.windows, timeout_s=timeout_s, merge=busy)
        finally:
            self._clips_in_flight[spec.name] -= 1
        scores = activate(logits, activation or spec.activation)
        return ClipScores(
            scores=pool(scores, spec.aggregation),
            window_scores=scores,
            window_starts=clip.starts,
            samples=clip.samples,
            sample_rate=spec.sample_rate,
            context=clip.context,
        )


def _runs(windows: FloatArray, overlap: int, most: int) -> list[FloatArray]:
    """[1, overlap + n*hop] waveforms, one per run of at most `most` consecutive windows.

    Windows i and i+1 are consecutive when i+1 begins with the last `overlap` samples of i;
    the run's waveform is then the first window and the new samples of the others, and window
    k of the run is exactly windows[k]. A window that does not follow (a clip's last window,
    set back to end at the clip's end) starts a run of its own."""
    count = windows.shape[0]
    hop = windows.shape[1] - overlap
    follows = np.ones(max(count - 1, 0), dtype=bool)
    if overlap and count > 1:
        follows = (windows[1:, :overlap] == windows[:-1, hop:]).all(axis=1)
    breaks = [0, *(np.flatnonzero(~follows) + 1).tolist(), count]
    runs = []
    for a, b in itertools.pairwise(breaks):
        for start in range(a, b, most):
            stop = min(start + most, b)
            run = np.empty((1, overlap + (stop - start) * hop), dtype=np.float32)
            run[0, : windows.shape[1]] = windows[start]
            run[0, windows.shape[1] :] = windows[start + 1 : stop, overlap:].reshape(-1)
            runs.append(run)
    return runs


def _shorter(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a < b else b
