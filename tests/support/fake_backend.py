"""A fake backend behind the same interface as triton/client.py, for unit tests only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

LABELS = ("zero", "one", "two", "three")


def config(
    name: str = "levels",
    *,
    window: int = 100,
    hop: int = 50,
    rate: int = 1000,
    stateful: bool = False,
    activation: str = "none",
    window_runs: int = 0,
) -> dict[str, Any]:
    """A Triton model config (JSON form) as get_model_config returns it."""
    inputs = [{"name": "waveform", "data_type": "TYPE_FP32", "dims": ["-1"]}]
    outputs = [{"name": "logits", "data_type": "TYPE_FP32", "dims": [str(len(LABELS))]}]
    if stateful:
        inputs.append({"name": "state_in", "data_type": "TYPE_FP32", "dims": ["1"]})
        outputs.append({"name": "state_out", "data_type": "TYPE_FP32", "dims": ["1"]})
    params = {
        "task": "audio-classification",
        "sample_rate": str(rate),
        "window_samples": str(window),
        "hop_samples": str(hop),
        "activation": activation,
        "labels": '["zero", "one", "two", "three"]',
    }
    if window_runs:
        params["window_runs"] = str(window_runs)
        outputs[0]["dims"] = ["-1", str(len(LABELS))]
    return {
        "name": name,
        "max_batch_size": 4,
        "input": inputs,
        "output": outputs,
        "parameters": {k: {"string_value": v} for k, v in params.items()},
    }


class LevelsBackend:
    """Label = the window's mean level times 10 (a signal at 0.2 is "two").

    Logits are one-hot (10 for the label); a stateful model adds 1 to its state per window
    and reports it as the last logit, so tests can see the state carried.
    """

    def __init__(self, configs: Sequence[dict[str, Any]]) -> None:
        self.configs = list(configs)
        self.calls: list[tuple[str, int]] = []
        self.loaded: list[str] = []
        self.runs: list[int] = []  # windows per request of a model taking runs

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, npt.NDArray[np.float32]],
        outputs: Sequence[str],
        *,
        timeout_s: float | None = None,
    ) -> dict[str, npt.NDArray[np.float32]]:
        windows = inputs["waveform"]
        self.calls.append((model, windows.shape[0]))
        config = next(c for c in self.configs if c["name"] == model)
        assert windows.shape[0] <= config["max_batch_size"]
        if "window_runs" in config["parameters"]:
            return self._runs(config, inputs, outputs)
        levels = np.clip(np.rint(windows.mean(axis=1) * 10), 0, len(LABELS) - 1).astype(int)
        logits = np.zeros((windows.shape[0], len(LABELS)), dtype=np.float32)
        logits[np.arange(windows.shape[0]), levels] = 10.0
        result = {"logits": logits}
        if "state_in" in inputs:
            state = inputs["state_in"] + 1
            result["state_out"] = state.astype(np.float32)
            logits[:, -1] = state[:, 0]
        return {name: result[name] for name in outputs}

    def _runs(
        self,
        config: dict[str, Any],
        inputs: Mapping[str, npt.NDArray[np.float32]],
        outputs: Sequence[str],
    ) -> dict[str, npt.NDArray[np.float32]]:
        """A model taking runs: [B, (window - hop) + n*hop] -> [B, n, labels], the state
        advanced once per window."""
        params = {
            k: int(v["string_value"])
            for k, v in config["parameters"].items()
            if k in ("window_samples", "hop_samples", "window_runs")
        }
        window, hop = params["window_samples"], params["hop_samples"]
        waveform = inputs["waveform"]
        n, rest = divmod(waveform.shape[1] - (window - hop), hop)
        assert rest == 0 and 1 <= n <= params["window_runs"], waveform.shape
        self.runs.append(n)
        view = np.lib.stride_tricks.sliding_window_view(waveform, window, axis=1)[:, ::hop]
        levels = np.clip(np.rint(view.mean(axis=2) * 10), 0, len(LABELS) - 1).astype(int)
        logits = np.zeros((waveform.shape[0], n, len(LABELS)), dtype=np.float32)
        for b in range(waveform.shape[0]):
            logits[b, np.arange(n), levels[b]] = 10.0
        state = inputs["state_in"]
        logits[:, :, -1] = state[:, :1] + np.arange(1, n + 1, dtype=np.float32)
        result = {"logits": logits, "state_out": (state + n).astype(np.float32)}
        return {name: result[name] for name in outputs}

    async def model_configs(self) -> list[tuple[dict[str, Any], str, bool]]:
        return [(c, "1", True) for c in self.configs]

    async def load_model(self, name: str) -> None:
        self.loaded.append(name)

    async def is_ready(self) -> bool:
        return True

    async def endpoint_health(self, timeout_s: float = 2.0) -> dict[str, bool]:
        return {"fake:8001": True}

    async def close(self) -> None:
        return None
