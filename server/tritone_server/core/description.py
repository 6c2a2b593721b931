"""What a client is told about a model: one description that every front end renders.

The gRPC ``ModelInfo`` and the HTTP ``GET /models`` JSON carry the same facts under the same
names, the spec's own; deciding them here (which thresholds count, what
``detection_min_windows`` says without them) leaves the front ends to translate encodings.
"""

from __future__ import annotations

from typing import Any

from tritone_server.core.models import ModelSpec

SPEC_FACTS = (
    "name",
    "version",
    "task",
    "labels",
    "sample_rate",
    "window_samples",
    "hop_samples",
    "activation",
    "stateful",
    "ready",
    "description",
)
"""The spec's attributes a client sees as they are."""


def describe_model(spec: ModelSpec) -> dict[str, Any]:
    """The model's facts by their wire names: the ``SPEC_FACTS``, and its operating point as
    ``detection_thresholds`` (label -> threshold) and ``detection_min_windows`` (0 when the
    model has no thresholds: there is no operating point to read)."""
    facts = {name: getattr(spec, name) for name in SPEC_FACTS}
    thresholds = dict(spec.detection.thresholds)
    facts["detection_thresholds"] = thresholds
    facts["detection_min_windows"] = spec.detection.min_windows if thresholds else 0
    return facts
