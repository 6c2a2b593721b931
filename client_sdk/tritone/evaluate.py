"""``tritone evaluate``: classify a labelled data set through a gateway and score the model.

    tritone evaluate DATA --model NAME [--target HOST:PORT] [--concurrency 8]
                          [--report out.json] [--confusion out.png] [--quiet]

DATA is an *audiofolder* (one sub-folder per label, every non-hidden file in it a clip) or
a CSV file of ``path,label`` rows, listed by `tritone.datasets.list_dataset`. Every clip is
sent to the server as its encoded bytes (the server decodes WAV, FLAC, OGG, MP3 ... at any
rate), ``--concurrency`` at a time, and the model's best label is compared with the clip's
label.

Printed and written to the JSON report: accuracy, per-class precision, recall and F1, and
their macro averages over the labels in the data (`tritone.metrics`, which says how labels
the data lacks are counted). ``--confusion`` draws the confusion matrix as a PNG heat map.

The command itself needs only the light SDK; the progress bar (tqdm) and the picture
(matplotlib) come with ``pip install 'tritone[eval]'`` and are imported when used; without
them ``--quiet`` and leaving out ``--confusion`` still work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tritone._cli_args import add_connection_arguments, connection_options
from tritone._client import AsyncClient
from tritone._extras import MissingExtraError, require
from tritone._plots import confusion_png
from tritone.datasets import DatasetError, list_dataset
from tritone.errors import TritoneError, UsageError
from tritone.metrics import compute_metrics, format_metrics

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["Progress", "classify_all", "main"]

DEFAULT_CONCURRENCY = 8


class Progress(Protocol):
    """What `classify_all` reports to: one `update()` per finished clip (tqdm fits)."""

    def update(self, n: int = 1) -> object: ...


def _progress_bar(total: int) -> tqdm[Any]:
    """tqdm on stderr; `main` has checked that tqdm is installed before any clip was sent."""
    import tqdm as tqdm_module

    return tqdm_module.tqdm(total=total, desc="evaluate", unit="clip", file=sys.stderr)


@dataclass
class _Outcome:
    predictions: dict[int, str] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)


async def classify_all(
    client: AsyncClient,
    clips: Sequence[tuple[Path, str]],
    model: str,
    concurrency: int,
    progress: Progress | None = None,
) -> _Outcome:
    """Classify every clip (its file's bytes), `concurrency` requests in flight."""
    outcome = _Outcome()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(clips)):
        queue.put_nowait(i)

    async def worker() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                result = await client.classify(clips[i][0], model=model, top_k=1)
            except (TritoneError, OSError) as exc:
                outcome.errors[i] = str(exc)
            else:
                top = result.top
                if top is None:
                    outcome.errors[i] = f"model {model!r} returned no labels"
                else:
                    outcome.predictions[i] = top.label
                    outcome.scores[i] = top.score
            if progress is not None:
                progress.update()

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(clips))))))
    return outcome


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tritone evaluate",
        description="Classify every clip of a labelled audiofolder or CSV through the gateway "
        "and print accuracy and per-class precision, recall and F1.",
    )
    parser.add_argument("data", metavar="DATA", help="audiofolder (a folder per label) or CSV")
    parser.add_argument("--model", required=True, help="model to evaluate")
    add_connection_arguments(parser)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="requests in flight (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds allowed per clip, queueing included (default: %(default)s)",
    )
    parser.add_argument("--report", type=Path, help="write a JSON report here")
    parser.add_argument(
        "--confusion",
        type=Path,
        help="draw the confusion matrix into this PNG file (needs matplotlib: tritone[eval])",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar (which needs tqdm: tritone[eval])"
    )
    return parser


async def _run(args: argparse.Namespace) -> int:
    clips = list_dataset(args.data)
    options = connection_options(args)
    async with AsyncClient(args.target, timeout=args.timeout, **options) as c:
        info = await c.get_model(args.model)
        with contextlib.ExitStack() as stack:
            bar = None if args.quiet else stack.enter_context(_progress_bar(len(clips)))
            outcome = await classify_all(c, clips, args.model, args.concurrency, bar)
    for i, why in sorted(outcome.errors.items()):
        print(f"error: {clips[i][0]}: {why}", file=sys.stderr)
    scored = sorted(outcome.predictions)
    if not scored:
        print("error: no clip could be classified", file=sys.stderr)
        return 1
    y_true = [clips[i][1] for i in scored]
    y_pred = [outcome.predictions[i] for i in scored]
    metrics = compute_metrics(y_true, y_pred)
    print(f"model {info.name} {info.version} on {args.data}: {len(scored)} clips")
    print(format_metrics(metrics))
    unknown_to_model = sorted(set(y_true) - set(info.labels))
    if unknown_to_model:
        print(f"note: labels in the data that the model lacks: {', '.join(unknown_to_model)}")
    if args.report is not None:
        report = {
            "model": info.name,
            "model_version": info.version,
            "model_labels": list(info.labels),
            "data": str(args.data),
            "clips": len(clips),
            "classified": len(scored),
            **metrics.as_dict(),
            "predictions": [
                {
                    "path": str(clips[i][0]),
                    "label": clips[i][1],
                    "predicted": outcome.predictions[i],
                    "score": outcome.scores[i],
                }
                for i in scored
            ],
            "errors": [
                {"path": str(clips[i][0]), "label": clips[i][1], "error": why}
                for i, why in sorted(outcome.errors.items())
            ],
        }
        args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.report}")
    if args.confusion is not None:
        confusion_png(args.confusion, metrics.confusion, metrics.labels)
        print(f"wrote {args.confusion} (rows: true labels, columns: predicted labels)")
    return 1 if outcome.errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tritone evaluate``; returns the exit status (1 if any clip failed)."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.concurrency < 1:
        print("error: --concurrency must be >= 1", file=sys.stderr)
        return 2
    try:  # before any clip is sent, not after the last one
        if not args.quiet:
            require("tqdm", "the progress bar of tritone evaluate (or pass --quiet)")
        if args.confusion is not None:
            require("matplotlib", "tritone evaluate --confusion")
    except MissingExtraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args))
    except TritoneError as exc:
        print(f"error: {exc.code.name}: {exc.details}", file=sys.stderr)
    except (DatasetError, UsageError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
