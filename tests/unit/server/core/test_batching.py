"""MicroBatcher: concurrent requests share one backend request; each caller gets its rows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pytest

from support.fake_backend import LevelsBackend, config
from support.waiting import wait_for
from tritone_server.core.batching import MicroBatcher
from tritone_server.core.inference import Inference
from tritone_server.core.models import spec_from_config
from tritone_server.core.scoring import FloatArray
from tritone_server.errors import BackendUnavailable, DeadlineExceeded, InvalidRequest


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


class SlowBackend(LevelsBackend):
    """LevelsBackend that answers once ``gate`` is set and records each request's timeout;
    a window holding a negative level is refused, as Triton refuses a bad tensor."""

    def __init__(self, configs: list[dict[str, object]], gate: asyncio.Event) -> None:
        super().__init__(configs)
        self.gate = gate
        self.timeouts: list[float | None] = []

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, FloatArray],
        outputs: Sequence[str],
        *,
        timeout_s: float | None = None,
    ) -> dict[str, FloatArray]:
        self.timeouts.append(timeout_s)
        await self.gate.wait()
        if (inputs["waveform"] < 0).any():
            raise InvalidRequest("a window holds a negative level")
        return await super().infer(model, inputs, outputs, timeout_s=timeout_s)


async def test_a_caller_with_a_short_deadline_leaves_the_merged_request_alone() -> None:
    c = config()
    spec = spec_from_config(c, "1")
    gate = asyncio.Event()
    backend = SlowBackend([c], gate)
    # The two fill the model's batch of 4 as they arrive, so they are merged at once, and
    # the merged request is held (gate) until the hurried caller has given up.
    inference = Inference(backend, timeout_s=30.0, batcher=MicroBatcher(max_delay_s=30.0))
    hurried = np.full((1, 100), 0.1, dtype=np.float32)
    patient = np.full((3, 100), 0.2, dtype=np.float32)
    hurried_run = asyncio.create_task(inference.run(spec, hurried, timeout_s=0.2))
    patient_run = asyncio.create_task(inference.run(spec, patient, timeout_s=30.0))
    with pytest.raises(DeadlineExceeded, match="deadline"):
        await hurried_run
    assert not patient_run.done()
    gate.set()
    scores, _ = await asyncio.wait_for(patient_run, 10)
    assert [int(row.argmax()) for row in scores] == [2, 2, 2]
    # One merged request, run under the gateway's timeout, not the hurried caller's.
    assert [n for _, n in backend.calls] == [4]
    assert backend.timeouts == [30.0]


async def test_one_bad_request_in_a_merged_batch_fails_only_its_caller() -> None:
    c = config()
    spec = spec_from_config(c, "1")
    gate = asyncio.Event()
    gate.set()
    backend = SlowBackend([c], gate)
    inference = Inference(backend, batcher=MicroBatcher(max_delay_s=0.005))
    levels = (0.1, -0.5, 0.3)
    outcomes = await asyncio.gather(
        *(inference.run(spec, np.full((1, 100), v, dtype=np.float32)) for v in levels),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], InvalidRequest)
    good = [o for i, o in enumerate(outcomes) if i != 1]
    assert all(not isinstance(o, BaseException) for o in good)
    assert [int(o[0][0].argmax()) for o in good] == [1, 3]  # type: ignore[index]


async def test_triton_unavailable_reaches_every_caller_without_retrying_each() -> None:
    batcher = MicroBatcher(max_delay_s=0.005)
    sent: list[int] = []

    async def down(inputs: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
        sent.append(int(inputs["x"].shape[0]))
        raise BackendUnavailable("Triton is down")

    outcomes = await asyncio.gather(
        *(batcher.submit("m", rows(i), ["y"], max_batch=8, send=down) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(o, BackendUnavailable) for o in outcomes)
    assert sent == [3]


class Gated:
    """A backend whose requests return only when the test opens the gate."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.gate = asyncio.Event()

    async def send(self, inputs: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
        self.batches.append(inputs["x"].shape[0])
        await self.gate.wait()
        return {"y": inputs["x"][:, :1]}


async def _until(condition: Callable[[], bool], what: str) -> None:
    # state the batcher changes, no event to wait on: polled, with a deadline
    await wait_for(condition, 30, poll_s=0.001, what=what)


async def test_while_triton_is_busy_a_batch_is_held_until_a_request_returns() -> None:
    batcher = MicroBatcher(max_delay_s=0.001, busy_hold_s=30.0, capacity=lambda: 1)
    backend = Gated()
    first = asyncio.ensure_future(
        batcher.submit("m", rows(0), ["y"], max_batch=64, send=backend.send)
    )
    await _until(lambda: backend.batches == [1], "the first request is sent")
    later = [
        asyncio.ensure_future(batcher.submit("m", rows(i), ["y"], max_batch=64, send=backend.send))
        for i in (1, 2)
    ]
    await _until(lambda: batcher.requests_held == 1, "the second batch is held")
    later.append(
        asyncio.ensure_future(batcher.submit("m", rows(3), ["y"], max_batch=64, send=backend.send))
    )
    await asyncio.sleep(0.01)  # far beyond the 1 ms delay: held, not sent
    assert backend.batches == [1]
    backend.gate.set()  # the first request returns: the held batch goes, with the late row
    results = await asyncio.wait_for(asyncio.gather(first, *later), timeout=5)
    assert backend.batches == [1, 3]
    assert [r["y"][0, 0] for r in results] == [0, 1, 2, 3]


async def test_a_held_batch_goes_when_the_hold_runs_out() -> None:
    batcher = MicroBatcher(max_delay_s=0.001, busy_hold_s=0.02, capacity=lambda: 1)
    backend = Gated()
    first = asyncio.ensure_future(
        batcher.submit("m", rows(0), ["y"], max_batch=64, send=backend.send)
    )
    await _until(lambda: backend.batches == [1], "the first request is sent")
    second = asyncio.ensure_future(
        batcher.submit("m", rows(1), ["y"], max_batch=64, send=backend.send)
    )
    await _until(lambda: backend.batches == [1, 1], "the hold ran out and the batch went")
    assert batcher.requests_held == 1
    backend.gate.set()
    await asyncio.wait_for(asyncio.gather(first, second), timeout=5)


async def test_no_hold_while_an_endpoint_is_free_or_for_another_model() -> None:
    batcher = MicroBatcher(max_delay_s=0.001, busy_hold_s=30.0, capacity=lambda: 2)
    backend = Gated()
    calls = [
        asyncio.ensure_future(batcher.submit("m", rows(0), ["y"], max_batch=64, send=backend.send))
    ]
    await _until(lambda: backend.batches == [1], "the first request is sent")
    calls.append(
        asyncio.ensure_future(batcher.submit("m", rows(1), ["y"], max_batch=64, send=backend.send))
    )
    await _until(lambda: backend.batches == [1, 1], "a second endpoint was free")
    calls.append(
        asyncio.ensure_future(batcher.submit("n", rows(2), ["y"], max_batch=64, send=backend.send))
    )
    await _until(lambda: backend.batches == [1, 1, 1], "model n has nothing in flight")
    assert batcher.requests_held == 0
    backend.gate.set()
    await asyncio.wait_for(asyncio.gather(*calls), timeout=5)
