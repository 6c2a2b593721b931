"""What a client is told about a model: one description that every front end renders.

The gRPC ``ModelInfo`` and the HTTP ``GET /models`` JSON carry the same facts; deciding them
here (which thresholds count, what ``detection_min_windows`` means without them) keeps the
front ends to translating names and encodings.
"""

from __future__ import annotations

from dataclasses import dataclass

from tritone_server.core.models import Activation, ModelSpec


@dataclass(frozen=True, slots=True)
class ModelDescription:
    name: str
    version: str
    task: str
    labels: tuple[str, ...]
    sample_rate: int
    window_samples: int
    hop_samples: int
    activation: Activation
    stateful: bool
    ready: bool
    description: str
    detection_thresholds: dict[str, float]
    detection_min_windows: int
    """0 when the model has no calibrated thresholds: there is no operating point to read."""


def describe_model(spec: ModelSpec) -> ModelDescription:
    thresholds = dict(spec.detection.thresholds)
    return ModelDescription(
        name=spec.name,
        version=spec.version,
        task=spec.task,
        labels=spec.labels,
        sample_rate=spec.sample_rate,
        window_samples=spec.window_samples,
        hop_samples=spec.hop_samples,
        activation=spec.activation,
        stateful=spec.stateful,
        ready=spec.ready,
        description=spec.description,
        detection_thresholds=thresholds,
        detection_min_windows=spec.detection.min_windows if thresholds else 0,
    )
