"""Fuzz inputs of every kind the gateway takes, each reproducible from (seed, index).

Kinds:
- ``encoded``: a mutated encoded file (every container) via gRPC Classify/Embed or HTTP.
- ``raw_pcm``: raw PCM with odd formats: odd byte counts, NaN/inf floats, extreme rates and
  channel counts, unknown encodings.
- ``stream_config``: a StreamConfig with fields at edge values, then a little audio.
- ``chunk_sequence``: odd message sequences: nothing, config only, audio before config,
  config twice, empty chunks, many tiny chunks, frames split anywhere, a huge chunk.
- ``request_fields``: unary requests and HTTP bodies with edge values in every other field.
"""

from __future__ import annotations

import base64
import json
import math
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np

from support.fuzzing.mutators import mutate
from support.fuzzing.seeds import Seed
from tritone_protos import audio_classification_pb2 as pb

Route = Literal["grpc_classify", "grpc_embed", "grpc_stream", "http"]
Kind = Literal["encoded", "raw_pcm", "stream_config", "chunk_sequence", "request_fields"]
KINDS: Final[tuple[Kind, ...]] = (
    "encoded",
    "raw_pcm",
    "stream_config",
    "chunk_sequence",
    "request_fields",
)
_WEIGHTS: Final = (50, 14, 14, 16, 6)

MODELS: Final = ("tones", "voice-activity", "speech-commands")
EMBEDDING_MODEL: Final = "speaker-embedding"
UINT32_MAX: Final = 2**32 - 1


@dataclass(frozen=True, slots=True)
class HttpRequest:
    model: str  # path segment, quoted when sent
    body: bytes
    content_type: str
    query: dict[str, str] = field(default_factory=dict)


Payload = pb.ClassifyRequest | pb.EmbedRequest | tuple[pb.StreamClassifyRequest, ...] | HttpRequest


@dataclass(frozen=True, slots=True)
class Case:
    index: int
    kind: Kind
    route: Route
    detail: str  # what was done, for the findings report
    payload: Payload
    unknown_model: bool = False  # NOT_FOUND is the right answer
    heavy: bool = False  # large: run it alone, so it cannot make other cases look slow

    def size(self) -> int:
        p = self.payload
        if isinstance(p, HttpRequest):
            return len(p.body)
        if isinstance(p, tuple):
            return sum(m.ByteSize() for m in p)
        return int(p.ByteSize())


@dataclass(frozen=True, slots=True)
class FuzzConfig:
    huge_chunk_bytes: int = 16 * 1024 * 1024
    """Size of the ``huge_chunk`` sequence's one chunk."""
    huge_chunk_share: float = 0.006
    """Share of chunk sequences that are ``huge_chunk``: each costs up to a deadline, and
    a few show what one huge message does as well as many would."""
    tiny_chunks: int = 4000
    """Chunks in the ``many_tiny`` sequence."""
    long_stream_s: float = 20.0
    """Audio in the ``long_stream`` sequence, sent in 100 ms chunks as fast as possible."""


def _pcm(rng: random.Random, encoding: int, rate: int, channels: int, seconds: float) -> bytes:
    frames = max(0, int(rate * seconds))
    n = frames * max(channels, 1)
    t = np.arange(n, dtype=np.float64) / max(rate, 1)
    wave = 0.4 * np.sin(2 * np.pi * rng.choice((250.0, 1000.0, 2828.0)) * t)
    if encoding == pb.PCM_F32LE:
        return bytes(wave.astype("<f4").tobytes())
    return bytes((wave * 32767).astype("<i2").tobytes())


def _odd_floats(rng: random.Random, data: bytes) -> bytes:
    """f32 samples with NaN, infinities, huge values or denormals written in."""
    out = bytearray(data)
    specials = (math.nan, math.inf, -math.inf, 3.4e38, -3.4e38, 1e-45, 2.0)
    for _ in range(rng.choice((1, 3, 100))):
        if len(out) >= 4:
            at = rng.randrange(len(out) // 4) * 4
            out[at : at + 4] = struct.pack("<f", rng.choice(specials))
    return bytes(out)


def _classify(model: str, audio: pb.Audio, rng: random.Random) -> pb.ClassifyRequest:
    return pb.ClassifyRequest(model=model, audio=audio, top_k=rng.choice((0, 1, 3)))


# ---- encoded files -----------------------------------------------------------------------


def _encoded(rng: random.Random, index: int, seeds: Sequence[Seed], cfg: FuzzConfig) -> Case:
    seed = rng.choice(seeds)
    if rng.random() < 0.05:
        data, how = seed.data, "unmutated"
    else:
        data, how = mutate(rng, seed, seeds)
    detail = f"{seed.name} {how} ({len(data)} bytes)"
    roll = rng.random()
    if roll < 0.5:
        model = rng.choice(MODELS)
        req = _classify(model, pb.Audio(encoded=data), rng)
        req.segments = rng.random() < 0.3
        return Case(index, "encoded", "grpc_classify", f"{model}: {detail}", req)
    if roll < 0.58:
        emb = pb.EmbedRequest(model=EMBEDDING_MODEL, audio=pb.Audio(encoded=data))
        return Case(index, "encoded", "grpc_embed", detail, emb)
    if roll < 0.85:
        return Case(
            index, "encoded", "http", f"raw body: {detail}", HttpRequest("tones", data, "audio/wav")
        )
    body = json.dumps({"inputs": base64.b64encode(data).decode(), "parameters": {"top_k": 2}})
    http = HttpRequest("tones", body.encode(), "application/json")
    return Case(index, "encoded", "http", f"json body: {detail}", http)


# ---- raw PCM ------------------------------------------------------------------------------

_ENCODINGS: Final = (pb.PCM_S16LE, pb.PCM_S16LE, pb.PCM_F32LE, pb.PCM_F32LE, 0, 3, 77)
_RATES: Final = (0, 1, 999, 1000, 8000, 16000, 16000, 44100, 384000, 384001, 2**31, UINT32_MAX)
_CHANNELS: Final = (0, 1, 1, 2, 8, 9, 255, UINT32_MAX)


def _raw_pcm(rng: random.Random, index: int, seeds: Sequence[Seed], cfg: FuzzConfig) -> Case:
    encoding = rng.choice(_ENCODINGS)
    rate = rng.choice(_RATES)
    channels = rng.choice(_CHANNELS)
    real_rate = min(max(rate, 1000), 48000)
    real_channels = min(max(channels, 1), 9)
    seconds = rng.choice((0.0, 0.01, 0.3, 1.0))
    data = _pcm(rng, encoding if encoding else pb.PCM_S16LE, real_rate, real_channels, seconds)
    what = rng.choice(("whole", "odd_bytes", "odd_floats", "empty", "one_byte", "short"))
    if what == "odd_bytes":
        data = data + rng.randbytes(rng.choice((1, 3, 5)))
    elif what == "odd_floats":
        data = _odd_floats(rng, data)
    elif what == "empty":
        data = b""
    elif what == "one_byte":
        data = b"\x01"
    elif what == "short":
        data = data[: rng.choice((2, 4, 6, 8, 12))]
    fmt = pb.PcmFormat(encoding=encoding, sample_rate=rate, channels=channels)  # type: ignore[arg-type]
    audio = pb.Audio(raw=pb.RawAudio(format=fmt, data=data))
    detail = f"enc={encoding} rate={rate} ch={channels} {what} ({len(data)} bytes)"
    if rng.random() < 0.1:
        return Case(
            index,
            "raw_pcm",
            "grpc_embed",
            detail,
            pb.EmbedRequest(model=EMBEDDING_MODEL, audio=audio),
        )
    model = rng.choice(MODELS)
    return Case(
        index, "raw_pcm", "grpc_classify", f"{model}: {detail}", _classify(model, audio, rng)
    )


# ---- stream configs -----------------------------------------------------------------------

_NAMES: Final = ("", "tones", "voice-activity", "speech-commands", EMBEDDING_MODEL)
_BAD_NAMES: Final = ("nope", "x" * 1000, "../tones", "tönes", "\x00", "tones/1")
_EDGES: Final[dict[str, tuple[object, ...]]] = {
    "encoding": (0, 1, 2, 3, 99),
    "sample_rate": (0, 1, 999, 1000, 8000, 16000, 48000, 384000, 384001, UINT32_MAX),
    "channels": (0, 1, 2, 8, 9, UINT32_MAX),
    "top_k": (0, 1, 8, 9, UINT32_MAX),
    "hop_ms": (0, 1, 9, 10, 32, 250, 500, 501, 1000, 60000, UINT32_MAX),
    "interim_results": (False, True),
    "detection_threshold": (
        math.nan,
        math.inf,
        -math.inf,
        -1.0,
        0.0,
        1e-38,
        0.5,
        1.0,
        1.0001,
        3.4e38,
    ),
    "detection_labels": ((), ("tone_250",), ("nope",), ("tone_250",) * 1000, ("",)),
    "activation": (0, 1, 2, 3, 4, 99),
    "suppress_windows": (False, True),
}


def _config(rng: random.Random, edges: dict[str, object], model: str) -> pb.StreamConfig:
    fmt = pb.PcmFormat(
        encoding=edges.get("encoding", pb.PCM_S16LE),  # type: ignore[arg-type]
        sample_rate=edges.get("sample_rate", 16000),  # type: ignore[arg-type]
        channels=edges.get("channels", 1),  # type: ignore[arg-type]
    )
    return pb.StreamConfig(
        model=model,
        format=fmt,
        top_k=edges.get("top_k", 3),  # type: ignore[arg-type]
        hop_ms=edges.get("hop_ms", 0),  # type: ignore[arg-type]
        interim_results=edges.get("interim_results", False),  # type: ignore[arg-type]
        detection_threshold=edges.get("detection_threshold", 0.0),  # type: ignore[arg-type]
        detection_labels=edges.get("detection_labels", ()),  # type: ignore[arg-type]
        activation=edges.get("activation", 0),  # type: ignore[arg-type]
        suppress_windows=edges.get("suppress_windows", False),  # type: ignore[arg-type]
    )


def _chunks(data: bytes, sizes: Sequence[int]) -> list[pb.StreamClassifyRequest]:
    out = []
    pos = 0
    i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out.append(pb.StreamClassifyRequest(audio=data[pos : pos + size]))
        pos += size
        i += 1
    return out


def _stream_config(rng: random.Random, index: int, seeds: Sequence[Seed], cfg: FuzzConfig) -> Case:
    chosen = rng.sample(sorted(_EDGES), rng.choice((1, 1, 2, 3)))
    edges = {name: rng.choice(_EDGES[name]) for name in chosen}
    unknown = rng.random() < 0.1
    model = rng.choice(_BAD_NAMES) if unknown else rng.choice(_NAMES)
    config = _config(rng, edges, model)
    encoding = int(config.format.encoding) if config.format.encoding in (1, 2) else 1
    rate = min(max(int(config.format.sample_rate), 1000), 48000)
    channels = min(max(int(config.format.channels), 1), 9)
    audio = _pcm(rng, encoding, rate, channels, rng.choice((0.0, 0.3, 1.2)))
    messages = (pb.StreamClassifyRequest(config=config), *_chunks(audio, (3200,)))
    shown = ", ".join(f"{k}={v!r:.40}" for k, v in sorted(edges.items()))
    detail = f"model={model!r:.20} {shown} ({len(audio)} audio bytes)"
    return Case(index, "stream_config", "grpc_stream", detail, messages, unknown_model=unknown)


# ---- chunk sequences ----------------------------------------------------------------------

_SEQUENCES: Final = (
    "no_messages",
    "config_only",
    "audio_first",
    "config_twice",
    "config_last",
    "empty_chunks",
    "empty_message",
    "many_tiny",
    "split_frames",
    "ends_mid_frame",
    "nan_chunk",
    "long_stream",
)


def _chunk_sequence(rng: random.Random, index: int, seeds: Sequence[Seed], cfg: FuzzConfig) -> Case:
    name = "huge_chunk" if rng.random() < cfg.huge_chunk_share else rng.choice(_SEQUENCES)
    encoding, rate, channels = rng.choice(
        (
            (pb.PCM_S16LE, 16000, 1),
            (pb.PCM_F32LE, 16000, 1),
            (pb.PCM_S16LE, 8000, 2),
            (pb.PCM_F32LE, 44100, 2),
            (pb.PCM_S16LE, 48000, 1),
        )
    )
    model = rng.choice(MODELS)
    config = pb.StreamClassifyRequest(
        config=pb.StreamConfig(
            model=model,
            format=pb.PcmFormat(encoding=encoding, sample_rate=rate, channels=channels),
            top_k=2,
            interim_results=rng.random() < 0.3,
        )
    )
    frame = (2 if encoding == pb.PCM_S16LE else 4) * channels
    audio = _pcm(rng, encoding, rate, channels, rng.choice((0.2, 0.7)))
    normal = _chunks(audio, (rng.choice((frame * 100, 3200, 4096)),))
    empty = pb.StreamClassifyRequest(audio=b"")
    heavy = False
    messages: list[pb.StreamClassifyRequest]
    if name == "no_messages":
        messages = []
    elif name == "config_only":
        messages = [config]
    elif name == "audio_first":
        messages = [*normal[:1], config, *normal[1:]]
    elif name == "config_twice":
        messages = [config, *normal[:1], config, *normal[1:]]
    elif name == "config_last":
        messages = [config, *normal, config]
    elif name == "empty_chunks":
        messages = [config]
        for m in normal:
            messages += [empty] * rng.choice((1, 5)) + [m]
        messages.append(empty)
    elif name == "empty_message":
        messages = [config, *normal[:1], pb.StreamClassifyRequest(), *normal[1:]]
    elif name == "many_tiny":
        sizes = [rng.choice((1, 2, 3, 5, 7)) for _ in range(64)]
        messages = [config, *_chunks(audio, sizes)[: cfg.tiny_chunks]]
    elif name == "split_frames":
        sizes = [rng.randrange(1, 4 * frame + 1) for _ in range(64)] + [rng.randrange(1, 20000)]
        messages = [config, *_chunks(audio, sizes)]
    elif name == "ends_mid_frame":
        messages = [config, *normal, pb.StreamClassifyRequest(audio=b"\x01" * (frame - 1))]
    elif name == "nan_chunk":
        if encoding == pb.PCM_F32LE:
            normal[len(normal) // 2] = pb.StreamClassifyRequest(
                audio=_odd_floats(rng, normal[len(normal) // 2].audio)
            )
        messages = [config, *normal]
    elif name == "huge_chunk":
        heavy = True
        low_rate = rng.choice((1000, 8000, 16000, 384000))
        config.config.format.sample_rate = low_rate
        size = cfg.huge_chunk_bytes - cfg.huge_chunk_bytes % frame
        messages = [config, pb.StreamClassifyRequest(audio=rng.randbytes(16) * (size // 16))]
        name = f"huge_chunk({size} bytes at {low_rate} Hz)"
    else:  # long_stream: 100 ms chunks
        long_audio = _pcm(rng, encoding, rate, channels, cfg.long_stream_s)
        messages = [config, *_chunks(long_audio, (rate // 10 * frame,))]
    detail = f"{name} model={model} enc={encoding} rate={rate} ch={channels} ({len(messages)} msgs)"
    return Case(index, "chunk_sequence", "grpc_stream", detail, tuple(messages), heavy=heavy)


# ---- other request fields -----------------------------------------------------------------


def _request_fields(rng: random.Random, index: int, seeds: Sequence[Seed], cfg: FuzzConfig) -> Case:
    wav = next(s for s in seeds if s.container == "wav").data
    which = rng.choice(
        ("no_audio", "empty_encoded", "top_k", "activation", "model", "http_query", "http_json")
    )
    req = pb.ClassifyRequest(model="tones", audio=pb.Audio(encoded=wav))
    unknown = False
    if which == "no_audio":
        req.ClearField("audio")
    elif which == "empty_encoded":
        req.audio.encoded = b""
    elif which == "top_k":
        req.top_k = rng.choice((1, 8, 9, UINT32_MAX))
    elif which == "activation":
        req.activation = rng.choice((1, 2, 3, 4, 99))  # type: ignore[assignment]
    elif which == "model":
        unknown = True
        req.model = rng.choice(_BAD_NAMES)
    elif which == "http_query":
        key, value = rng.choice(
            (
                ("top_k", "-1"),
                ("top_k", "0"),
                ("top_k", "abc"),
                ("top_k", "99999999999999999999"),
                ("function_to_apply", "nope"),
                ("function_to_apply", "sigmoid"),
                ("top_k", "1e3"),
            )
        )
        http = HttpRequest("tones", wav, "audio/wav", {key: value})
        return Case(index, "request_fields", "http", f"query {key}={value}", http)
    else:
        body = rng.choice(
            (
                b"{",
                b"[]",
                b'{"inputs": 3}',
                b'{"inputs": "@@@"}',
                b"\xff\xfe",
                json.dumps({"inputs": base64.b64encode(wav).decode(), "parameters": [1]}).encode(),
                json.dumps(
                    {"inputs": base64.b64encode(wav).decode(), "parameters": {"top_k": {"a": 1}}}
                ).encode(),
                json.dumps({"inputs": ""}).encode(),
            )
        )
        http = HttpRequest("tones", body, "application/json")
        return Case(index, "request_fields", "http", f"json body {body[:40]!r}", http)
    detail = f"{which}: model={req.model!r:.20} top_k={req.top_k} activation={req.activation}"
    return Case(index, "request_fields", "grpc_classify", detail, req, unknown_model=unknown)


_MAKERS: Final = {
    "encoded": _encoded,
    "raw_pcm": _raw_pcm,
    "stream_config": _stream_config,
    "chunk_sequence": _chunk_sequence,
    "request_fields": _request_fields,
}


def make_case(
    seed: int, index: int, seeds: Sequence[Seed], cfg: FuzzConfig, kind: Kind | None = None
) -> Case:
    """Case `index` of the run with this seed: the same bytes every time."""
    rng = random.Random(f"{seed}:{index}")
    chosen: Kind = kind or rng.choices(KINDS, weights=_WEIGHTS)[0]
    return _MAKERS[chosen](rng, index, seeds, cfg)
