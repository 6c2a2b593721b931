"""The real tritonserver from the nvidia-pytriton wheel, started by LocalTriton."""

import asyncio
import math
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from tritone_server.triton.local import LocalTriton, TritonStartError

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"
RATE = 16_000
LABELS = (REPOSITORY / "tones" / "labels.txt").read_text().split()


def _tone(freq: float, samples: int) -> npt.NDArray[np.float32]:
    t = np.arange(samples, dtype=np.float64) / RATE
    tone: npt.NDArray[np.float32] = (0.5 * np.sin(2 * math.pi * freq * t)).astype(np.float32)
    return tone


async def _classify(client: InferenceServerClient, waveform: npt.NDArray[np.float32]) -> int:
    batch = waveform[np.newaxis, :]
    tensor = InferInput("waveform", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)
    result = await client.infer("tones", [tensor])
    return int(result.as_numpy("logits")[0].argmax())


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_local_triton_serves_the_tones_model() -> None:
    triton = LocalTriton(REPOSITORY)
    async with triton as endpoints:
        pid = triton.pid
        work_dir = triton.work_dir
        assert pid is not None and work_dir is not None
        assert endpoints.grpc_url.startswith("127.0.0.1:")
        assert endpoints.http_url.startswith("127.0.0.1:")
        assert endpoints.metrics_url.startswith("http://127.0.0.1:")
        assert "tones" in triton.models

        client = InferenceServerClient(endpoints.grpc_url)
        try:
            assert await client.is_server_live()
            assert await client.is_server_ready()
            assert await client.is_model_ready("tones")

            bands = [0, 3, 7]
            batch = np.stack([_tone(250.0 * 2.0 ** (b / 2), 8000) for b in bands])
            waveform = InferInput("waveform", list(batch.shape), "FP32")
            waveform.set_data_from_numpy(batch)
            result = await client.infer(
                "tones", [waveform], outputs=[InferRequestedOutput("logits")]
            )
            logits = result.as_numpy("logits")
            assert logits.shape == (3, 8)
            assert logits.dtype == np.float32
            assert [LABELS[i] for i in logits.argmax(axis=1)] == [LABELS[b] for b in bands]

            # Concurrent requests meet in Triton's dynamic batcher and in model.py's batching.
            jobs = [(k % 8, [8000, 4000, 1234][k % 3]) for k in range(24)]
            answers = await asyncio.gather(
                *(_classify(client, _tone(250.0 * 2.0 ** (b / 2), n)) for b, n in jobs)
            )
            assert answers == [b for b, _ in jobs]

            # A request the module cannot run fails alone; the model stays up.
            with pytest.raises(InferenceServerException):
                await _classify(client, np.zeros(0, dtype=np.float32))
            assert await client.is_model_ready("tones")

            config = (await client.get_model_config("tones", as_json=True))["config"]
            assert config["backend"] == "python"
            assert int(config["max_batch_size"]) == 64
            parameters = {k: v["string_value"] for k, v in config["parameters"].items()}
            assert parameters["task"] == "audio-classification"
            assert parameters["sample_rate"] == "16000"
            assert parameters["window_samples"] == "8000"
            assert parameters["hop_samples"] == "4000"
            assert parameters["activation"] == "softmax"
            assert parameters["labels"].startswith('["tone_250"')
            assert config["output"][0]["label_filename"] == "labels.txt"
        finally:
            await client.close()

    assert triton.pid is None
    assert _gone(pid)
    assert not work_dir.exists()


async def test_a_broken_model_fails_startup_with_tritons_output(tmp_path: Path) -> None:
    broken = tmp_path / "repository" / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "model.pt").write_bytes(b"not a TorchScript archive")
    (broken.parent / "config.pbtxt").write_text(
        'name: "broken"\nplatform: "pytorch_libtorch"\nmax_batch_size: 4\n'
        'input [ { name: "waveform" data_type: TYPE_FP32 dims: [ -1 ] } ]\n'
        'output [ { name: "logits" data_type: TYPE_FP32 dims: [ 2 ] } ]\n'
    )
    with pytest.raises(TritonStartError, match="broken"):
        async with LocalTriton(tmp_path / "repository", startup_timeout_s=120.0):
            pass
