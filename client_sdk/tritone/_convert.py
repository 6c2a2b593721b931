"""Proto <-> public types, and validation of call options. Plain functions, no I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final, Literal

from tritone._audio_input import check_channels, check_sample_rate, encoding_to_proto
from tritone.errors import invalid_argument
from tritone.types import (
    Activation,
    ClassifyResult,
    Detection,
    Embedding,
    LabelScore,
    ModelInfo,
    ModelSummary,
    PcmEncoding,
    Segment,
    SpeechSegment,
    StreamEvent,
    StreamSummary,
    Utterance,
    WindowResult,
)
from tritone_protos import audio_classification_pb2 as pb

_MAX_UINT32: Final = 2**32 - 1

_ACTIVATION_TO_PB: Final[dict[str | None, pb.Activation]] = {
    None: pb.ACTIVATION_UNSPECIFIED,
    "softmax": pb.ACTIVATION_SOFTMAX,
    "sigmoid": pb.ACTIVATION_SIGMOID,
    "none": pb.ACTIVATION_NONE,
}
_ACTIVATION_FROM_PB: Final[dict[int, Activation]] = {
    pb.ACTIVATION_SOFTMAX: "softmax",
    pb.ACTIVATION_SIGMOID: "sigmoid",
    pb.ACTIVATION_NONE: "none",
}


def activation_to_proto(activation: Activation | None) -> pb.Activation:
    try:
        return _ACTIVATION_TO_PB[activation]
    except (KeyError, TypeError):
        raise invalid_argument(
            f"activation must be 'softmax', 'sigmoid', 'none' or None, got {activation!r}"
        ) from None


def _model_name(model: str | None) -> str:
    if model is None:
        return ""
    if not isinstance(model, str) or not model.strip():
        raise invalid_argument(f"model must be a non-empty name or None, got {model!r}")
    return model


def _top_k(top_k: int | None) -> int:
    if top_k is None:
        return 0
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= _MAX_UINT32:
        raise invalid_argument(f"top_k must be a positive int or None, got {top_k!r}")
    return top_k


def classify_request(
    audio: pb.Audio,
    *,
    model: str | None,
    top_k: int | None,
    segments: bool,
    activation: Activation | None,
) -> pb.ClassifyRequest:
    return pb.ClassifyRequest(
        model=_model_name(model),
        audio=audio,
        top_k=_top_k(top_k),
        segments=bool(segments),
        activation=activation_to_proto(activation),
    )


def embed_request(model: str | None) -> pb.EmbedRequest:
    return pb.EmbedRequest(model=_model_name(model))


def stream_config_request(
    *,
    sample_rate: int,
    model: str | None,
    encoding: PcmEncoding,
    channels: int,
    top_k: int | None,
    hop_ms: int | None,
    interim_results: bool,
    detection_threshold: float | Literal["model"] | None,
    detection_labels: Iterable[str],
    activation: Activation | None,
    suppress_windows: bool,
    models: Iterable[str] = (),
    gate: str | None = None,
    gate_threshold: float | None = None,
    gate_padding_ms: int | None = None,
    per_segment: Iterable[str] = (),
) -> pb.StreamClassifyRequest:
    """The first message of a stream, with every option checked."""
    several = _several_models(model, models)
    if hop_ms is None:
        hop = 0
    elif isinstance(hop_ms, bool) or not isinstance(hop_ms, int) or not 1 <= hop_ms <= _MAX_UINT32:
        raise invalid_argument(
            f"hop_ms must be a positive int (milliseconds) or None, got {hop_ms!r}"
        )
    else:
        hop = hop_ms
    model_thresholds = False
    if detection_threshold is None:
        threshold = 0.0
    elif detection_threshold == "model":
        threshold = 0.0
        model_thresholds = True
    elif (
        isinstance(detection_threshold, bool)
        or not isinstance(detection_threshold, int | float)
        or not math.isfinite(detection_threshold)
        or detection_threshold <= 0
    ):
        raise invalid_argument(
            'detection_threshold must be a number > 0, "model" or None, '
            f"got {detection_threshold!r}"
        )
    else:
        threshold = float(detection_threshold)
    if isinstance(detection_labels, str):
        raise invalid_argument("detection_labels must be a sequence of labels, not one string")
    labels = list(detection_labels)
    if not all(isinstance(label, str) and label for label in labels):
        raise invalid_argument(f"detection_labels must be non-empty strings, got {labels!r}")
    fmt = pb.PcmFormat(
        encoding=encoding_to_proto(encoding),
        sample_rate=check_sample_rate(sample_rate),
        channels=check_channels(channels),
    )
    config = pb.StreamConfig(
        model=_model_name(model),
        format=fmt,
        top_k=_top_k(top_k),
        hop_ms=hop,
        interim_results=bool(interim_results),
        detection_threshold=threshold,
        detection_labels=labels,
        activation=activation_to_proto(activation),
        suppress_windows=bool(suppress_windows),
        model_thresholds=model_thresholds,
        models=several,
    )
    _set_gate(config, gate, gate_threshold, gate_padding_ms)
    if isinstance(per_segment, str):
        raise invalid_argument("per_segment must be a sequence of model names, not one string")
    config.per_segment.extend(per_segment)
    if config.per_segment and not config.gate_model:
        raise invalid_argument("per_segment models answer once per speech segment: give gate")
    return pb.StreamClassifyRequest(config=config)


def _several_models(model: str | None, models: Iterable[str]) -> list[str]:
    """The ``models`` field of a StreamConfig, checked."""
    if isinstance(models, str):
        raise invalid_argument("models must be a sequence of model names, not one string")
    names = list(models)
    if not all(isinstance(name, str) and name for name in names):
        raise invalid_argument(f"models must be non-empty model names, got {names!r}")
    if names and model is not None:
        raise invalid_argument("give model or models, not both")
    return names


def _set_gate(
    config: pb.StreamConfig,
    gate: str | None,
    gate_threshold: float | None,
    gate_padding_ms: int | None,
) -> None:
    """The gate fields of a StreamConfig, checked."""
    if gate is None:
        if gate_threshold is not None or gate_padding_ms is not None:
            raise invalid_argument("gate_threshold and gate_padding_ms need a gate model")
        return
    if not isinstance(gate, str) or not gate:
        raise invalid_argument(f"gate must be a model name, got {gate!r}")
    config.gate_model = gate
    if gate_threshold is not None:
        if (
            isinstance(gate_threshold, bool)
            or not isinstance(gate_threshold, int | float)
            or not 0 < gate_threshold <= 1
        ):
            raise invalid_argument(
                f"gate_threshold must be a number above 0 and at most 1, got {gate_threshold!r}"
            )
        config.gate_threshold = float(gate_threshold)
    if gate_padding_ms is not None:
        if (
            isinstance(gate_padding_ms, bool)
            or not isinstance(gate_padding_ms, int)
            or not 0 <= gate_padding_ms <= _MAX_UINT32
        ):
            raise invalid_argument(
                f"gate_padding_ms must be an int of 0 or more (ms), got {gate_padding_ms!r}"
            )
        config.gate_padding_ms = gate_padding_ms


def _labels(msgs: Iterable[pb.LabelScore]) -> tuple[LabelScore, ...]:
    return tuple(LabelScore(m.label, m.score) for m in msgs)


def classify_result(resp: pb.ClassifyResponse) -> ClassifyResult:
    return ClassifyResult(
        labels=_labels(resp.labels),
        model=resp.model,
        model_version=resp.model_version,
        duration_s=resp.duration_s,
        input_frames=resp.input_frames,
        input_sample_rate=resp.input_sample_rate,
        segments=tuple(Segment(s.start_s, s.end_s, _labels(s.labels)) for s in resp.segments),
    )


def embedding(resp: pb.EmbedResponse) -> Embedding:
    return Embedding(
        vector=tuple(resp.embedding),
        model=resp.model,
        model_version=resp.model_version,
        duration_s=resp.duration_s,
        input_frames=resp.input_frames,
        input_sample_rate=resp.input_sample_rate,
    )


def model_info(msg: pb.ModelInfo) -> ModelInfo:
    return ModelInfo(
        name=msg.name,
        version=msg.version,
        task=msg.task,
        labels=tuple(msg.labels),
        sample_rate=msg.sample_rate,
        window_samples=msg.window_samples,
        hop_samples=msg.hop_samples,
        activation=_ACTIVATION_FROM_PB.get(msg.activation, "none"),
        stateful=msg.stateful,
        ready=msg.state == pb.MODEL_STATE_READY,
        description=msg.description,
        # in the model's label order, not the map's
        detection_thresholds=tuple(
            (label, msg.detection_thresholds[label])
            for label in msg.labels
            if label in msg.detection_thresholds
        ),
        detection_min_windows=msg.detection_min_windows,
    )


def stream_event(resp: pb.StreamClassifyResponse) -> StreamEvent | None:
    """The event a response carries; None for an empty one (a newer server's event kind)."""
    kind = resp.WhichOneof("event")
    if kind == "window":
        w = resp.window
        return WindowResult(
            index=w.index,
            start_s=w.start_s,
            end_s=w.end_s,
            labels=_labels(w.labels),
            interim=w.interim,
            frames_received=resp.frames_received,
            consumed_s=resp.consumed_s,
            model=w.model,
        )
    if kind == "detection":
        d = resp.detection
        return Detection(
            label=d.label,
            start_s=d.start_s,
            end_s=d.end_s,
            peak_score=d.peak_score,
            frames_received=resp.frames_received,
            consumed_s=resp.consumed_s,
            model=d.model,
        )
    if kind == "segment":
        g = resp.segment
        return SpeechSegment(
            start_s=g.start_s,
            end_s=g.end_s,
            final=g.final,
            model=g.model,
            frames_received=resp.frames_received,
            consumed_s=resp.consumed_s,
        )
    if kind == "utterance":
        u = resp.utterance
        return Utterance(
            model=u.model,
            start_s=u.start_s,
            end_s=u.end_s,
            labels=_labels(u.labels),
            window_start_s=u.window_start_s,
            window_end_s=u.window_end_s,
            too_long=u.too_long,
            frames_received=resp.frames_received,
            consumed_s=resp.consumed_s,
            embedding=tuple(u.embedding),
        )
    if kind == "summary":
        s = resp.summary
        return StreamSummary(
            bytes_received=s.bytes_received,
            frames_received=s.frames_received,
            model_samples=s.model_samples,
            padding_samples=s.padding_samples,
            windows=s.windows,
            detections=s.detections,
            duration_s=s.duration_s,
            labels=_labels(s.labels),
            model=s.model,
            model_version=s.model_version,
            consumed_s=resp.consumed_s,
            models=tuple(
                ModelSummary(
                    model=m.model,
                    model_version=m.model_version,
                    windows=m.windows,
                    windows_skipped=m.windows_skipped,
                    segments=m.segments,
                    model_samples=m.model_samples,
                    padding_samples=m.padding_samples,
                    detections=m.detections,
                    labels=_labels(m.labels),
                    gated=m.gated,
                    gate=m.gate,
                )
                for m in s.models
            ),
        )
    return None
