"""The one core that gRPC Classify, StreamClassify and the HTTP route all call.

It turns mono waveforms at the model's rate into scores: windows go to the backend in
batches no larger than the model's max_batch_size; stateful models run window after window
with their state carried here, so Triton replicas stay stateless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tritone_server.audio.dsp import frame_windows, resample, to_mono
from tritone_server.audio.formats import DecodedAudio
from tritone_server.core.batching import MicroBatcher
from tritone_server.core.models import Activation, ModelSpec
from tritone_server.core.scoring import FloatArray, activate, pool
from tritone_server.errors import BackendUnavailable, InvalidRequest
from tritone_server.metrics import Metrics
from tritone_server.triton.backend import InferenceBackend

State = dict[str, npt.NDArray[np.float32]]

# Below this many samples, resampling on the event loop costs less than a thread hop.
_INLINE_SAMPLES = 48_000


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

    async def _infer(
        self,
        spec: ModelSpec,
        inputs: dict[str, FloatArray],
        outputs: list[str],
        timeout_s: float | None,
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

        if self.batcher is None:
            share = send(inputs)
        else:
            share = self.batcher.submit(
                spec.name, inputs, outputs, max_batch=spec.max_batch_size, send=send
            )
        if timeout_s is None or (self.timeout_s is not None and timeout_s >= self.timeout_s):
            return await share
        try:
            return await asyncio.wait_for(share, timeout_s)
        except TimeoutError:
            raise BackendUnavailable(
                f"the call's deadline ({timeout_s:.3f} s) passed before Triton answered"
            ) from None

    async def run(
        self,
        spec: ModelSpec,
        windows: FloatArray,
        state: State | None = None,
        *,
        timeout_s: float | None = None,
    ) -> tuple[FloatArray, State]:
        """Raw outputs for [n, samples] windows and, for stateful models, the next state."""
        timeout = _shorter(timeout_s, self.timeout_s)
        if spec.stateful:
            return await self._run_stateful(spec, windows, state, timeout)
        step = spec.max_batch_size
        parts = [windows[i : i + step] for i in range(0, windows.shape[0], step)]
        outputs = [spec.output_name]
        results = await asyncio.gather(
            *(self._infer(spec, {"waveform": p}, outputs, timeout) for p in parts)
        )
        logits = np.concatenate([r[spec.output_name] for r in results], axis=0)
        return logits.astype(np.float32, copy=False), {}

    async def _run_stateful(
        self,
        spec: ModelSpec,
        windows: FloatArray,
        state: State | None,
        timeout_s: float | None,
    ) -> tuple[FloatArray, State]:
        current = state if state is not None else initial_state(spec)
        outputs = [spec.output_name, *(s.output_name for s in spec.states)]
        rows = []
        for i in range(windows.shape[0]):
            inputs: dict[str, FloatArray] = {"waveform": windows[i : i + 1], **current}
            result = await self._infer(spec, inputs, outputs, timeout_s)
            rows.append(result[spec.output_name])
            current = {s.input_name: result[s.output_name] for s in spec.states}
        return np.concatenate(rows, axis=0).astype(np.float32, copy=False), current

    async def classify_clip(
        self,
        spec: ModelSpec,
        audio: DecodedAudio,
        activation: Activation | None = None,
        *,
        timeout_s: float | None = None,
    ) -> ClipScores:
        mono = await prepare(audio, spec.sample_rate)
        samples = int(mono.shape[0])
        if samples < spec.min_samples:
            raise InvalidRequest(
                f"the audio is {audio.duration_s:.4f} s ({samples} samples at "
                f"{spec.sample_rate} Hz); model {spec.name!r} needs at least "
                f"{spec.min_samples} samples ({spec.min_samples / spec.sample_rate:.4f} s)"
            )
        if spec.context_samples:
            mono = np.concatenate([np.zeros(spec.context_samples, dtype=np.float32), mono])
        windows, starts = frame_windows(mono, spec.window_samples, spec.hop_samples)
        logits, _ = await self.run(spec, windows, timeout_s=timeout_s)
        scores = activate(logits, activation or spec.activation)
        return ClipScores(
            scores=pool(scores, spec.aggregation),
            window_scores=scores,
            window_starts=tuple(starts),
            samples=samples,
            sample_rate=spec.sample_rate,
            context=spec.context_samples,
        )


async def prepare(audio: DecodedAudio, rate: int) -> FloatArray:
    """Mono at ``rate``; large clips are converted off the event loop."""

    def convert() -> FloatArray:
        return resample(to_mono(audio.samples), audio.sample_rate, rate)

    if audio.frames * audio.channels <= _INLINE_SAMPLES:
        return convert()
    return await asyncio.to_thread(convert)


def _shorter(a: float | None, b: float | None) -> float | None:
    given = [t for t in (a, b) if t is not None]
    return min(given) if given else None
