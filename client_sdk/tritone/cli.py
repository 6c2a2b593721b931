"""The ``tritone`` command: classify, stream, models; and the subcommands other packages add.

classify, stream and models are clients of a running gateway at ``--target`` (default
``$TRITONE_TARGET`` or 127.0.0.1:50051), with ``--token`` (default ``$TRITONE_TOKEN``).
Other packages add subcommands through the ``tritone.commands`` entry points: the gateway
``serve``, the offline tools ``train``, ``import-hf`` and ``evaluate``. Each entry point
names a light object with ``help`` (a line for ``tritone --help``), ``extra`` (the pip
extra the command needs, or "") and ``load()``, which imports the command's
``main(argv) -> int``; every argument after the command's name goes to it. The SDK imports
none of those packages by name: when a command's package or extra is missing, the command
says which one to install and exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np

from tritone._client import AsyncClient
from tritone.cli_args import add_connection_arguments, connection_options
from tritone.errors import TritoneError, UsageError
from tritone.types import (
    AudioChunk,
    ClassifyResult,
    Detection,
    ModelInfo,
    PcmEncoding,
    SpeechSegment,
    StreamEvent,
    StreamSummary,
    Utterance,
    WindowResult,
)

__all__ = ["main"]

# The entry-point group other packages fill with subcommands (see the module docstring).
COMMANDS_GROUP = "tritone.commands"
# The SDK's own commands; an entry point may not take their names.
_BUILTIN = frozenset({"classify", "stream", "models"})


class _CliError(Exception):
    """A local problem (file, format) reported as ``error: <message>``."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tritone`` command; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    added = _added_commands()
    if args_list[:1] and args_list[0] in added:
        return _delegate(added[args_list[0]], args_list[1:])
    parser = _parser(added)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        result: int = asyncio.run(args.run(args))
        return result
    except TritoneError as exc:
        print(f"error: {exc.code.name}: {exc.details}", file=sys.stderr)
    except (_CliError, UsageError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


def _added_commands() -> dict[str, EntryPoint]:
    """The installed ``tritone.commands`` entry points by command name (the first of a name
    wins; the SDK's own commands cannot be replaced)."""
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=COMMANDS_GROUP):
        if entry.name not in _BUILTIN:
            found.setdefault(entry.name, entry)
    return dict(sorted(found.items()))


def _delegate(entry: EntryPoint, rest: list[str]) -> int:
    extra = ""
    try:
        command = entry.load()
        extra = str(command.extra)
        command_main = command.load()
    except ImportError as exc:
        print(_install_hint(entry.name, extra, exc), file=sys.stderr)
        return 2
    status: int = command_main(rest)
    return status


def _install_hint(name: str, extra: str, exc: ImportError) -> str:
    """One sentence: what to install for command `name` to run."""
    missing = exc.name or str(exc)
    if extra:
        return (
            f"tritone {name} needs the [{extra}] extra: "
            f"pip install 'tritone[{extra}]' ({missing} is missing)"
        )
    return f"tritone {name} needs {missing}, which is not installed: pip install tritone"


def _help_line(entry: EntryPoint) -> str:
    try:
        command = entry.load()
        extra = str(command.extra)
        return str(command.help) + (f" (needs tritone[{extra}])" if extra else "")
    except (ImportError, AttributeError):
        return "not installed"


def _parser(added: dict[str, EntryPoint]) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_connection_arguments(common)
    common.add_argument("--json", action="store_true", help="print one JSON object per line")

    parser = argparse.ArgumentParser(prog="tritone", description="Tritone audio classification")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, entry in added.items():
        sub.add_parser(name, help=_help_line(entry), add_help=False)

    classify = sub.add_parser("classify", parents=[common], help="classify whole audio files")
    classify.add_argument("files", nargs="+", metavar="FILE")
    classify.add_argument("--model", help="model name (default: the server's)")
    classify.add_argument("--top-k", type=int, help="labels per file (default: 5)")
    classify.add_argument("--segments", action="store_true", help="also print per-window labels")
    classify.set_defaults(run=_classify)

    stream = sub.add_parser("stream", parents=[common], help="stream a WAV file, print events")
    stream.add_argument("file", metavar="FILE")
    stream.add_argument("--chunk-ms", type=int, default=100, help="chunk length (default: 100)")
    stream.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pace chunks at real time (default: on)",
    )
    stream.add_argument("--model", help="model name (default: the server's)")
    stream.add_argument(
        "--threshold",
        type=_threshold,
        help='detection threshold, or "model" for the model\'s calibrated ones (default: none)',
    )
    stream.add_argument("--top-k", type=int, help="labels per window (default: 5)")
    stream.add_argument("--hop-ms", type=int, help="step between windows (default: the model's)")
    stream.add_argument(
        "--models",
        type=_names,
        default=(),
        help="several models on the one stream, comma-separated (instead of --model)",
    )
    stream.add_argument(
        "--gate",
        help="a voice-activity model that lets the other models run only near speech",
    )
    stream.add_argument(
        "--per-segment",
        type=_names,
        default=(),
        help="gated models that answer once per speech segment, comma-separated (a "
        "command word, a speaker, or an embedding per utterance)",
    )
    stream.add_argument("--gate-threshold", type=float, help="speech probability (default: 0.5)")
    stream.add_argument(
        "--gate-padding-ms", type=int, help="audio kept around speech, in ms (default: 200)"
    )
    stream.set_defaults(run=_stream)

    models = sub.add_parser("models", parents=[common], help="list the served models")
    models.set_defaults(run=_models)
    return parser


def _client(args: argparse.Namespace) -> AsyncClient:
    return AsyncClient(args.target, **connection_options(args))


def _emit(obj: dict[str, Any], out: TextIO | None = None) -> None:
    print(json.dumps(obj), file=out or sys.stdout, flush=True)


async def _classify(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        for name in args.files:
            result = await client.classify(
                Path(name), model=args.model, top_k=args.top_k, segments=args.segments
            )
            _print_result(name, result, as_json=args.json)
    return 0


def _print_result(name: str, result: ClassifyResult, *, as_json: bool) -> None:
    if as_json:
        _emit({"file": name, **asdict(result)})
        return
    print(f"{name}  ({result.model} {result.model_version}, {result.duration_s:.2f} s)")
    for item in result.labels:
        print(f"  {item.score:8.4f}  {item.label}")
    for seg in result.segments:
        best = ", ".join(f"{ls.label} {ls.score:.3f}" for ls in seg.labels[:3])
        print(f"    [{seg.start_s:7.2f} - {seg.end_s:7.2f}] {best}")
    sys.stdout.flush()


async def _models(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        models = await client.list_models()
    for info in models:
        _print_model(info, as_json=args.json)
    return 0


def _print_model(info: ModelInfo, *, as_json: bool) -> None:
    if as_json:
        _emit(asdict(info))
        return
    state = "ready" if info.ready else "unavailable"
    window_s = info.window_samples / info.sample_rate if info.sample_rate else 0.0
    print(
        f"{info.name}  v{info.version}  {info.task}  {info.sample_rate} Hz  "
        f"window {window_s:.3f} s  {len(info.labels)} labels  {info.activation}  {state}"
    )


class _WavSource:
    """Frames of an audio file as PCM chunks, in the encoding the stream declares."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with wave.open(path, "rb") as wav:
                if wav.getsampwidth() != 2:
                    raise wave.Error(f"{wav.getsampwidth() * 8}-bit samples")
                self.sample_rate = wav.getframerate()
                self.channels = wav.getnchannels()
                self.encoding = PcmEncoding.S16LE
                self._pcm: bytes | None = wav.readframes(wav.getnframes())
                self._array: np.ndarray[Any, Any] | None = None
        except wave.Error as exc:
            self._load_other(exc)

    def _load_other(self, why: wave.Error) -> None:
        try:
            import soundfile  # optional: only for input that is not 16-bit WAV
        except ImportError:
            raise _CliError(
                f"{self.path} is not a 16-bit PCM WAV file ({why}); convert it (for example "
                "`ffmpeg -i IN -ac 1 -c:a pcm_s16le OUT.wav`) or install soundfile"
            ) from None
        try:
            data, rate = soundfile.read(self.path, dtype="float32", always_2d=True)
        except Exception as exc:
            raise _CliError(f"cannot read {self.path}: {exc}") from exc
        self.sample_rate = int(rate)
        self.channels = int(data.shape[1])
        self.encoding = PcmEncoding.F32LE
        self._pcm = None
        self._array = np.asarray(data, dtype=np.float32)

    @property
    def frame_bytes(self) -> int:
        return self.encoding.sample_bytes * self.channels

    async def chunks(self, chunk_ms: int, realtime: bool) -> AsyncIterator[AudioChunk]:
        frames = max(1, self.sample_rate * chunk_ms // 1000)
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        if self._pcm is not None:
            total = len(self._pcm) // self.frame_bytes
        else:
            assert self._array is not None
            total = len(self._array)
        while sent < total:
            if self._pcm is not None:
                chunk: AudioChunk = self._pcm[
                    sent * self.frame_bytes : (sent + frames) * self.frame_bytes
                ]
            else:
                assert self._array is not None
                chunk = self._array[sent : sent + frames]
            yield chunk
            sent += frames
            if realtime:
                await asyncio.sleep(max(0.0, start + sent / self.sample_rate - loop.time()))


async def _stream(args: argparse.Namespace) -> int:
    if args.chunk_ms <= 0:
        raise _CliError("--chunk-ms must be > 0")
    source = await asyncio.to_thread(_WavSource, args.file)
    async with _client(args) as client:
        stream = client.stream_classify(
            source.chunks(args.chunk_ms, args.realtime),
            sample_rate=source.sample_rate,
            encoding=source.encoding,
            channels=source.channels,
            model=args.model,
            top_k=args.top_k,
            hop_ms=args.hop_ms,
            detection_threshold=args.threshold,
            models=args.models,
            gate=args.gate,
            gate_threshold=args.gate_threshold,
            gate_padding_ms=args.gate_padding_ms,
            per_segment=args.per_segment,
        )
        async with stream:
            async for event in stream:
                _print_event(event, as_json=args.json)
    return 0


def _threshold(raw: str) -> float | Literal["model"]:
    """--threshold: a number, or "model" for the model's own operating point."""
    if raw == "model":
        return "model"
    try:
        return float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'model': {raw!r}") from None


def _names(raw: str) -> tuple[str, ...]:
    """--models: comma-separated model names."""
    names = tuple(name.strip() for name in raw.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"not a comma-separated list of model names: {raw!r}")
    return names


def _print_event(event: StreamEvent, *, as_json: bool) -> None:
    if as_json:
        kind = {
            WindowResult: "window",
            Detection: "detection",
            SpeechSegment: "segment",
            Utterance: "utterance",
            StreamSummary: "summary",
        }
        _emit({"type": kind[type(event)], **asdict(event)})
        return
    if isinstance(event, WindowResult):
        best = ", ".join(f"{ls.label} {ls.score:.3f}" for ls in event.labels[:3])
        mark = " (interim)" if event.interim else ""
        who = f"{event.model} " if event.model else ""
        print(
            f"window {who}{event.index:5d} [{event.start_s:7.2f} - {event.end_s:7.2f}] {best}{mark}"
        )
    elif isinstance(event, Detection):
        who = f"{event.model} " if event.model else ""
        print(
            f"detection {who}{event.label} [{event.start_s:7.2f} - {event.end_s:7.2f}] "
            f"peak {event.peak_score:.3f}"
        )
    elif isinstance(event, SpeechSegment):
        what = "speech ended" if event.final else "speech started"
        print(f"{what} [{event.start_s:7.2f} - {event.end_s:7.2f}]")
    elif isinstance(event, Utterance):
        if event.too_long:
            said = "too long for one utterance"
        elif event.embedding:
            head = ", ".join(f"{x:.3f}" for x in event.embedding[:3])
            said = f"embedding {len(event.embedding)}-d [{head}, ...]"
        else:
            said = f"{event.labels[0].label} {event.labels[0].score:.3f}"
        print(f"utterance {event.model} [{event.start_s:7.2f} - {event.end_s:7.2f}] {said}")
    else:
        labels = ", ".join(f"{ls.label} {ls.score:.3f}" for ls in event.labels)
        print(
            f"summary {event.model} {event.model_version}: {event.duration_s:.2f} s, "
            f"{event.windows} windows, {event.detections} detections; {labels}"
        )
        for m in event.models:
            labels = ", ".join(f"{ls.label} {ls.score:.3f}" for ls in m.labels[:3])
            role = " (gate)" if m.gate else " (gated)" if m.gated else ""
            print(
                f"  {m.model}{role}: {m.windows} windows, {m.windows_skipped} skipped, "
                f"{m.segments} segments, {m.detections} detections; {labels}"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
