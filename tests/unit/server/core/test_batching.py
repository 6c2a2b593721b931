"""MicroBatcher: concurrent requests share one backend request; each caller gets its rows."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import numpy as np
import pytest

from support.fake_backend import LevelsBackend, config
from tritone_server.core.batching import MicroBatcher
from tritone_server.core.inference import Inference
from tritone_server.core.models import spec_from_config
from tritone_server.core.scoring import FloatArray


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.fail = fail

    async def send(self, inputs: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
        x = inputs["x"]
        self.batches.append(x.shape[0])
        await asyncio.sleep(0)
        if self.fail:
            raise RuntimeError("backend down")
        return {"y": x.sum(axis=1, keepdims=True) * 2}


def rows(*values: float) -> dict[str, FloatArray]:
    return {"x": np.array([[v, v] for v in values], dtype=np.float32)}


async def test_concurrent_requests_share_one_send_and_get_their_own_rows() -> None:
    batcher, backend = MicroBatcher(max_delay_s=0.01), Recorder()
    results = await asyncio.gather(
        *(
            batcher.submit("m", rows(i, i + 0.5), ["y"], max_batch=64, send=backend.send)
            for i in range(5)
        )
    )
    assert backend.batches == [10]
    for i, result in enumerate(results):
        assert result["y"][:, 0].tolist() == [4 * i, 4 * i + 2]


async def test_a_full_batch_goes_at_once_and_the_rest_follows() -> None:
    batcher, backend = MicroBatcher(max_delay_s=10.0), Recorder()
    results = await asyncio.wait_for(
        asyncio.gather(
            *(batcher.submit("m", rows(i), ["y"], max_batch=4, send=backend.send) for i in range(4))
        ),
        timeout=1.0,  # a 10 s delay must not be waited for: four rows fill the batch
    )
    assert backend.batches == [4]
    assert [r["y"][0, 0] for r in results] == [0, 4, 8, 12]


async def test_different_shapes_or_models_are_not_merged() -> None:
    batcher, backend = MicroBatcher(max_delay_s=0.005), Recorder()
    wide = {"x": np.ones((1, 3), dtype=np.float32)}
    await asyncio.gather(
        batcher.submit("m", rows(1), ["y"], max_batch=8, send=backend.send),
        batcher.submit("m", wide, ["y"], max_batch=8, send=backend.send),
        batcher.submit("other", rows(1), ["y"], max_batch=8, send=backend.send),
    )
    assert sorted(backend.batches) == [1, 1, 1]


async def test_errors_reach_every_caller_and_a_cancelled_caller_is_left_out() -> None:
    batcher, failing = MicroBatcher(max_delay_s=0.005), Recorder(fail=True)
    outcomes = await asyncio.gather(
        *(batcher.submit("m", rows(i), ["y"], max_batch=8, send=failing.send) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes)

    backend = Recorder()
    gone = asyncio.create_task(batcher.submit("m", rows(9), ["y"], max_batch=8, send=backend.send))
    kept = asyncio.create_task(batcher.submit("m", rows(1), ["y"], max_batch=8, send=backend.send))
    await asyncio.sleep(0)
    gone.cancel()
    assert (await kept)["y"].tolist() == [[4.0]]
    assert backend.batches == [1]
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_streams_windows_batched_through_inference_give_the_same_scores() -> None:
    c = config(stateful=True)
    spec = spec_from_config(c, "1")
    backend = LevelsBackend([c])
    inference = Inference(backend, batcher=MicroBatcher(max_delay_s=0.005))
    windows = [np.full((1, 100), level, dtype=np.float32) for level in (0.1, 0.2, 0.3)]
    outs = await asyncio.gather(*(inference.run(spec, w) for w in windows))
    assert [int(o[0].argmax()) for o, _ in outs] == [1, 2, 3]
    assert all(s["state_in"].tolist() == [[1.0]] for _, s in outs)  # each its own state
    assert [n for _, n in backend.calls] == [3]
