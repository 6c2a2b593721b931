"""The model catalogue, read from Triton's model configs: nothing here knows a model by name.

A model takes part when its config carries Tritone's parameters (``task``, ``sample_rate``,
``window_samples``, ``hop_samples``, ``activation``, ``labels``); other models on a shared
Triton are ignored with a log line.

Optional parameters: ``context_samples``, ``min_samples``, ``aggregation``, ``description``,
and ``window_runs`` for a stateful model that takes a run of n consecutive windows in one
request: its ``waveform`` is then [batch, (window - hop) + n*hop] (dims [-1]), its score
output [batch, n, labels] (dims [-1, labels]) and its state outputs the state after the
run's last window; the value is the most windows the gateway puts in one request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tritone_server.core.operating_point import OperatingPoint, parse_operating_point
from tritone_server.errors import BackendUnavailable, ModelNotFound

log = logging.getLogger(__name__)

Activation = Literal["softmax", "sigmoid", "none"]
Aggregation = Literal["mean", "max"]
ACTIVATIONS: tuple[Activation, ...] = ("softmax", "sigmoid", "none")
AGGREGATIONS: tuple[Aggregation, ...] = ("mean", "max")

WAVEFORM_INPUT = "waveform"
LOGITS_OUTPUT = "logits"
EMBEDDING_OUTPUT = "embedding"
SCORE_OUTPUTS = (LOGITS_OUTPUT, EMBEDDING_OUTPUT)
"""The model contract names the score output: label scores, or a backbone's vector."""
STATE_IN_PREFIX = "state_in"
STATE_OUT_PREFIX = "state_out"


@dataclass(frozen=True, slots=True)
class StateTensor:
    """One recurrent state carried by the gateway between a stream's windows."""

    input_name: str
    output_name: str
    shape: tuple[int, ...]
    """Shape without the batch dimension."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    version: str
    task: str
    labels: tuple[str, ...]
    sample_rate: int
    window_samples: int
    """0 means the whole clip is one window."""
    hop_samples: int
    activation: Activation
    aggregation: Aggregation
    output_name: str
    max_batch_size: int
    states: tuple[StateTensor, ...] = ()
    context_samples: int = 0
    """Leading samples of each window that repeat the audio before it (zeros at the start)."""
    min_samples: int = 0
    """Shortest audio the model accepts, at its rate (e.g. wav2vec2's 400)."""
    description: str = ""
    ready: bool = True
    detection: OperatingPoint = field(default_factory=OperatingPoint)
    """The model's calibrated detection thresholds (operating_point.py), used by streams that
    ask for detections without a threshold of their own."""
    window_runs: int = 0
    """A stateful model that takes runs of consecutive windows: the most windows per request
    (its waveform is [batch, (window - hop) + n*hop], its score output [batch, n, labels]).
    0: one window per request."""

    @property
    def stateful(self) -> bool:
        return bool(self.states)

    @property
    def is_embedding(self) -> bool:
        """A backbone: its output is a vector to compare (Embed), not label scores to rank
        (Classify, streams). The output's name says so, whatever the free-text ``task``."""
        return self.output_name == EMBEDDING_OUTPUT


class ModelConfigError(ValueError):
    """A Triton model config lacks what the gateway needs."""


def _param(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get("parameters", {}).get(key)
    if value is None:
        return None
    return str(value.get("string_value", ""))


def _required_int(config: Mapping[str, Any], key: str) -> int:
    raw = _param(config, key)
    if raw is None:
        raise ModelConfigError(f"parameter {key!r} is missing")
    try:
        value = int(raw)
    except ValueError:
        raise ModelConfigError(f"parameter {key!r} is {raw!r}, not an integer") from None
    if value < 0:
        raise ModelConfigError(f"parameter {key!r} is negative")
    return value


def _optional_int(config: Mapping[str, Any], key: str) -> int:
    return _required_int(config, key) if _param(config, key) is not None else 0


def _dims(tensor: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.get("dims", []))


def spec_from_config(config: Mapping[str, Any], version: str, ready: bool = True) -> ModelSpec:
    """Build a spec from a Triton model config (JSON form); raise ModelConfigError if unfit."""
    name = str(config.get("name", ""))
    task = _param(config, "task")
    if not task:
        raise ModelConfigError("parameter 'task' is missing")
    inputs = {t["name"]: t for t in config.get("input", [])}
    outputs = {t["name"]: t for t in config.get("output", [])}
    if WAVEFORM_INPUT not in inputs:
        raise ModelConfigError(f"input {WAVEFORM_INPUT!r} is missing")
    if inputs[WAVEFORM_INPUT].get("data_type") != "TYPE_FP32":
        raise ModelConfigError(f"input {WAVEFORM_INPUT!r} must be TYPE_FP32")
    output_name = next((o for o in SCORE_OUTPUTS if o in outputs), None)
    if output_name is None:
        raise ModelConfigError(f"no output named one of {SCORE_OUTPUTS}")
    max_batch = int(config.get("max_batch_size", 0))
    if max_batch < 1:
        raise ModelConfigError("max_batch_size must be >= 1: every tensor is batch-first")
    sample_rate = _required_int(config, "sample_rate")
    if sample_rate <= 0:
        raise ModelConfigError("parameter 'sample_rate' must be positive")
    window = _required_int(config, "window_samples")
    hop = _required_int(config, "hop_samples")
    if window > 0 and hop == 0:
        raise ModelConfigError("parameter 'hop_samples' must be positive with a window")
    min_samples = _optional_int(config, "min_samples")
    if window and min_samples > window:
        raise ModelConfigError("parameter 'min_samples' is larger than the window")
    context = _optional_int(config, "context_samples")
    if context and context >= window:
        raise ModelConfigError("parameter 'context_samples' must be smaller than the window")
    activation = _param(config, "activation") or "none"
    if activation not in ACTIVATIONS:
        raise ModelConfigError(f"parameter 'activation' is {activation!r}; use {ACTIVATIONS}")
    aggregation = _param(config, "aggregation") or "mean"
    if aggregation not in AGGREGATIONS:
        raise ModelConfigError(f"parameter 'aggregation' is {aggregation!r}; use {AGGREGATIONS}")
    labels = _labels(config, output_name, outputs[output_name])
    states = _states(inputs, outputs)
    try:
        detection = parse_operating_point(
            _param(config, "detection_thresholds"),
            _param(config, "detection_min_windows"),
            labels,
            bounded=activation != "none",
        )
    except ValueError as exc:
        raise ModelConfigError(str(exc)) from None
    window_runs = _optional_int(config, "window_runs")
    if window_runs and not (states and window and hop <= window):
        raise ModelConfigError(
            "parameter 'window_runs' needs a stateful model with windows no shorter than its hop"
        )
    return ModelSpec(
        name=name,
        version=version,
        task=task,
        labels=labels,
        sample_rate=sample_rate,
        window_samples=window,
        hop_samples=hop if window > 0 else 0,
        activation=activation,
        aggregation=aggregation,
        output_name=output_name,
        max_batch_size=max_batch,
        states=states,
        context_samples=context,
        min_samples=min_samples,
        description=_param(config, "description") or "",
        ready=ready,
        detection=detection,
        window_runs=window_runs,
    )


def _labels(
    config: Mapping[str, Any], output_name: str, output: Mapping[str, Any]
) -> tuple[str, ...]:
    raw = _param(config, "labels")
    dims = _dims(output)
    if raw is None:
        if output_name == LOGITS_OUTPUT:
            raise ModelConfigError("parameter 'labels' (a JSON list) is missing")
        return ()
    try:
        labels = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelConfigError(f"parameter 'labels' is not JSON: {exc}") from None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ModelConfigError("parameter 'labels' must be a JSON list of strings")
    if output_name == LOGITS_OUTPUT and not labels:
        raise ModelConfigError("parameter 'labels' is empty: label scores need labels")
    if dims and dims[-1] > 0 and dims[-1] != len(labels):
        raise ModelConfigError(
            f"output {output_name!r} has {dims[-1]} values but {len(labels)} labels are given"
        )
    return tuple(labels)


def _states(
    inputs: Mapping[str, Mapping[str, Any]], outputs: Mapping[str, Mapping[str, Any]]
) -> tuple[StateTensor, ...]:
    states = []
    for name in sorted(inputs):
        if not name.startswith(STATE_IN_PREFIX):
            continue
        out_name = STATE_OUT_PREFIX + name[len(STATE_IN_PREFIX) :]
        if out_name not in outputs:
            raise ModelConfigError(f"state input {name!r} has no output {out_name!r}")
        shape = _dims(inputs[name])
        if any(d < 0 for d in shape):
            raise ModelConfigError(f"state input {name!r} must have a fixed shape")
        states.append(StateTensor(name, out_name, shape))
    return tuple(states)


class ConfigSource(Protocol):
    """What the catalogue needs from a backend."""

    async def model_configs(self) -> list[tuple[dict[str, Any], str, bool]]:
        """(config JSON, version, ready) for each model in the repository."""
        ...


class Catalogue:
    """The models served, refreshed from Triton on demand (``reload``)."""

    def __init__(self, default_model: str) -> None:
        self.default_model = default_model
        self._specs: dict[str, ModelSpec] = {}
        self.loaded = False

    def replace(self, specs: Iterable[ModelSpec]) -> None:
        self._specs = {s.name: s for s in specs}
        self.loaded = True

    async def reload(self, source: ConfigSource) -> list[ModelSpec]:
        specs = []
        for config, version, ready in await source.model_configs():
            try:
                specs.append(spec_from_config(config, version, ready))
            except ModelConfigError as exc:
                log.warning("event=model_skipped model=%s reason=%r", config.get("name"), str(exc))
        self.replace(specs)
        return specs

    def all(self) -> list[ModelSpec]:
        return [self._specs[k] for k in sorted(self._specs)]

    def lookup(self, name: str) -> ModelSpec:
        """The spec of a known model, whatever its state."""
        key = name or self.default_model
        if not self.loaded:
            raise BackendUnavailable("the gateway is starting: Triton's models are not loaded yet")
        spec = self._specs.get(key)
        if spec is None:
            known = ", ".join(sorted(self._specs)) or "none"
            raise ModelNotFound(f"model {key!r} is not served here (models: {known})")
        return spec

    def get(self, name: str) -> ModelSpec:
        """The spec of a model ready to take requests."""
        spec = self.lookup(name)
        if not spec.ready:
            raise BackendUnavailable(f"model {spec.name!r} is not ready in Triton")
        return spec
