"""Stateful models that take runs of consecutive windows (config parameter `window_runs`):
the same scores and states as window after window, in far fewer requests."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from support.fake_backend import LevelsBackend, config
from tritone_server.audio.formats import PcmEncoding, PcmFormat
from tritone_server.core.clips import frame_clip
from tritone_server.core.inference import Inference
from tritone_server.core.models import ModelConfigError, ModelSpec, spec_from_config
from tritone_server.core.streams import LiveStream, StreamOptions, WindowEvent

RATE = 1000
F32 = PcmFormat(PcmEncoding.F32LE, RATE, 1)


def signal(seconds: float) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(3)
    steps = np.repeat(rng.integers(0, 4, size=int(seconds * 20)) / 10, RATE // 20)
    return steps.astype(np.float32)


def pair(runs: int) -> tuple[Inference, Inference, LevelsBackend, ModelSpec, ModelSpec]:
    plain_cfg = config(stateful=True)
    runs_cfg = config(stateful=True, window_runs=runs)
    plain, batched = LevelsBackend([plain_cfg]), LevelsBackend([runs_cfg])
    return (
        Inference(plain),
        Inference(batched),
        batched,
        spec_from_config(plain_cfg, "1"),
        spec_from_config(runs_cfg, "1"),
    )


@pytest.mark.parametrize("seconds", [0.05, 0.1, 0.6, 1.234])
async def test_a_clip_in_runs_scores_like_window_after_window(seconds: float) -> None:
    one, runs, backend, plain_spec, runs_spec = pair(runs=4)
    audio = signal(seconds)[: int(seconds * RATE)]
    clip = frame_clip(runs_spec, audio)  # the last window may be set back to the clip's end
    expected = await one.classify_clip(plain_spec, frame_clip(plain_spec, audio))
    got = await runs.classify_clip(runs_spec, clip)
    np.testing.assert_array_equal(got.window_scores, expected.window_scores)
    assert sum(backend.runs) == clip.windows.shape[0]
    assert all(n <= 4 for n in backend.runs)
    # a run per four windows, plus one for a last window that does not follow on
    assert len(backend.runs) <= -(-clip.windows.shape[0] // 4) + 1


async def test_a_stream_sends_one_request_per_chunk_and_carries_the_state() -> None:
    _, runs, backend, _, runs_spec = pair(runs=64)
    stream = LiveStream(runs_spec, runs, F32, StreamOptions(top_k=4))
    data = signal(1.0).astype("<f4").tobytes()
    events = []
    for i in range(0, len(data), 800):  # 200 ms chunks: 4 hops each
        events += await stream.feed(data[i : i + 800])
    events += await stream.finish()
    windows = [e for e in events if isinstance(e, WindowEvent)]
    assert [dict(w.labels)["three"] for w in windows] == [float(i + 1) for i in range(19)]
    assert len(backend.calls) == 5 + 0  # one request per chunk; the stream ends on a window
    assert stream.state["state_in"][0, 0] == 19


def test_window_runs_needs_a_stateful_model() -> None:
    with pytest.raises(ModelConfigError, match="window_runs"):
        spec_from_config(config(window_runs=8), "1")


async def test_runs_of_equal_length_from_many_streams_share_one_request() -> None:
    from tritone_server.core.batching import MicroBatcher

    c = config(stateful=True, window_runs=8)
    spec = spec_from_config(c, "1")
    backend = LevelsBackend([c])
    inference = Inference(backend, batcher=MicroBatcher(max_delay_s=0.005))
    # three streams, each with a run of three consecutive windows (hop 50, window 100)
    audio = [np.full(200, level, dtype=np.float32) for level in (0.0, 0.1, 0.2)]
    windows = [np.lib.stride_tricks.sliding_window_view(a, 100)[::50] for a in audio]
    outs = await asyncio.gather(*(inference.run(spec, w) for w in windows))
    assert [n for _, n in backend.calls] == [3]  # one request, three rows
    assert backend.runs == [3]
    for level, (scores, state) in zip((0, 1, 2), outs, strict=True):
        assert scores.shape == (3, 4)
        assert [int(row[:3].argmax()) for row in scores] == [level] * 3
        assert state["state_in"].tolist() == [[3.0]]  # three windows each, own state


async def test_a_lone_clip_goes_at_once_and_concurrent_clips_share_requests() -> None:
    from tritone_server.core.batching import MicroBatcher

    class SlowBackend(LevelsBackend):
        """Answers after a moment, as Triton does, so clips overlap."""

        async def infer(self, *args: Any, **kwargs: Any) -> dict[str, npt.NDArray[np.float32]]:
            await asyncio.sleep(0.01)  # the behaviour: Triton's latency, which clips overlap
            return await super().infer(*args, **kwargs)

    c = config(window=100, hop=50)
    spec = spec_from_config(c, "1")
    backend = SlowBackend([c])
    # a delay no test would wait for: a lone clip must not wait for it
    inference = Inference(backend, batcher=MicroBatcher(max_delay_s=30.0))
    clip = frame_clip(spec, np.full(100, 0.1, dtype=np.float32))  # one window
    alone = await asyncio.wait_for(inference.classify_clip(spec, clip), 5)
    assert int(alone.scores.argmax()) == 1 and backend.calls == [("levels", 1)]
    backend.calls.clear()
    # five at once: the first goes alone, the four others (busy) fill one batch of 4
    many = await asyncio.wait_for(
        asyncio.gather(*(inference.classify_clip(spec, clip) for _ in range(5))), 5
    )
    assert all(int(m.scores.argmax()) == 1 for m in many)
    assert sorted(n for _, n in backend.calls) == [1, 4]
