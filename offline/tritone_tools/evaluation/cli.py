"""``tritone evaluate``: classify a labelled data set through a gateway and score the model.

    tritone evaluate DATA --model NAME [--target HOST:PORT] [--concurrency 8]
                          [--report out.json] [--confusion out.png] [--quiet]
                          [--detect LABEL,LABEL... [--min-windows 1] [--budget 2]]

DATA is an *audiofolder* (one sub-folder per label, every non-hidden file in it a clip) or
a CSV file of ``path,label`` rows, listed by `datasets.list_dataset`. Every clip is sent to
the server as its encoded bytes (the server decodes WAV, FLAC, OGG, MP3 ... at any rate),
``--concurrency`` at a time, and the model's best label is compared with the clip's label.

Printed and written to the JSON report: accuracy, per-class precision, recall and F1, and
their macro averages over the labels in the data (`metrics`, which says how labels the data
lacks are counted). ``--confusion`` draws the confusion matrix as a PNG heat map.

``--detect`` adds a detection evaluation of the named labels (the *watched* labels, as a
stream's ``detection_labels``): false alarms per hour and recall against threshold, a DET
curve per label and for all together (printed as markdown tables, written to the report
under ``detection``, drawn next to the confusion matrix in the ``--confusion`` PNG). Each
clip is classified with its per-window scores (``segments``, every label), and a detection
is counted as a stream makes one: a run of windows at or above the threshold lasting
``--min-windows`` windows (the gateway's rule, `tritone_server.core.detection`). The data set
needs both:
- *positives*: clips labelled with a watched label; one is a hit at a threshold when its
  own label is detected in it at least once (detections of another watched label in it are
  reported as ``other_label_detections``, not as false alarms);
- *negative audio*: clips with any other label (``unknown``, ``speech``, ``background``
  ...: speech and noise the model should ignore, ideally longer recordings of the audio it
  will really hear); every detection in them is a false alarm, and their decoded durations
  summed are the hours the rate is per.
``--budget`` also picks, per label, the lowest threshold whose false alarms stay within an
equal share of that many per hour (the rule the speech-commands recipe calibrated its model
by); the result can go into a model's ``detection_thresholds`` parameter. The windows are
those of Classify: the same as a stream's except the last of a clip, which Classify ends at
the clip's end where a stream zero-pads it (a zero-padded tail window can fire, so clips
streamed one by one can count a few more false alarms than this).

The command itself needs only the light SDK (and the gateway's numpy-only detection rule);
the progress bar (tqdm) and the picture (matplotlib) come with ``pip install
'tritone[eval]'`` and are imported when used; without them ``--quiet`` and leaving out
``--confusion`` still work.
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

import numpy as np
import numpy.typing as npt

from tritone import AsyncClient
from tritone.cli_args import add_connection_arguments, connection_options
from tritone.errors import TritoneError, UsageError
from tritone.types import ClassifyResult
from tritone_tools.evaluation.datasets import DatasetError, list_dataset
from tritone_tools.evaluation.metrics import (
    Calibration,
    DetectionMetrics,
    OperatingPointDetection,
    calibrate_detection,
    compute_detection_metrics,
    compute_metrics,
    format_detection,
    format_metrics,
    format_operating_point,
    operating_point_detection,
)
from tritone_tools.evaluation.plots import confusion_png
from tritone_tools.extras import MissingExtraError, require

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
    windows: dict[int, npt.NDArray[np.float64]] = field(default_factory=dict)
    """With `watched`: each clip's window scores, [windows, len(watched)]."""
    durations: dict[int, float] = field(default_factory=dict)


def _window_scores(result: ClassifyResult, watched: Sequence[str]) -> npt.NDArray[np.float64] | str:
    """The watched labels' scores of each segment, or why the answer lacks them."""
    rows = []
    for segment in result.segments:
        scores = {ls.label: ls.score for ls in segment.labels}
        missing = [label for label in watched if label not in scores]
        if missing:
            return f"window scores lack labels {missing}"
        rows.append([scores[label] for label in watched])
    if not rows:
        return "the answer has no per-window scores"
    return np.asarray(rows, dtype=np.float64)


async def classify_all(
    client: AsyncClient,
    clips: Sequence[tuple[Path, str]],
    model: str,
    concurrency: int,
    progress: Progress | None = None,
    *,
    watched: Sequence[str] = (),
    labels: int = 1,
) -> _Outcome:
    """Classify every clip (its file's bytes), `concurrency` requests in flight.

    With `watched`, every clip's per-window scores of those labels are kept too (asked with
    ``top_k=labels``, which must be the model's number of labels, so no score is cut).
    """
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
                result = await client.classify(
                    clips[i][0],
                    model=model,
                    top_k=labels if watched else 1,
                    segments=bool(watched),
                )
            except (TritoneError, OSError) as exc:
                outcome.errors[i] = str(exc)
            else:
                top = result.top
                windows = _window_scores(result, watched) if watched else None
                if top is None:
                    outcome.errors[i] = f"model {model!r} returned no labels"
                elif isinstance(windows, str):
                    outcome.errors[i] = windows
                else:
                    outcome.predictions[i] = top.label
                    outcome.scores[i] = top.score
                    if windows is not None:
                        outcome.windows[i] = windows
                        outcome.durations[i] = result.duration_s
            if progress is not None:
                progress.update()

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(clips))))))
    return outcome


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tritone evaluate",
        description="Classify every clip of a labelled audiofolder or CSV through the gateway "
        "and print accuracy and per-class precision, recall and F1; with --detect, also false "
        "alarms per hour and recall against threshold (DET curves) for the watched labels.",
        epilog="Detection (--detect): a clip whose label is watched is a positive (a hit when "
        "its own label is detected in it); a clip with any other label is negative audio "
        "(every detection in it is a false alarm; the clips' decoded durations summed give "
        "the hours). A detection is a run of windows at or above the threshold lasting "
        "--min-windows windows, as a stream reports it. Thresholds 0.01-0.99 in steps of "
        "0.01, 0.995 and 0.999.",
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
        help="draw the confusion matrix (and, with --detect, the DET curves next to it) into "
        "this PNG file (needs matplotlib: tritone[eval])",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar (which needs tqdm: tritone[eval])"
    )
    parser.add_argument(
        "--detect",
        metavar="LABEL,LABEL...",
        type=_label_list,
        help="watched labels: also report false alarms per hour and recall against threshold "
        "(DET curves; clips of other labels are the negative audio)",
    )
    parser.add_argument(
        "--min-windows",
        type=int,
        default=1,
        help="with --detect: windows a span must last to count (default: %(default)s)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        metavar="PER_HOUR",
        help="with --detect: per-label thresholds for this many false alarms per hour",
    )
    return parser


def _label_list(raw: str) -> tuple[str, ...]:
    labels = tuple(x.strip() for x in raw.split(",") if x.strip())
    if not labels:
        raise argparse.ArgumentTypeError("give at least one label")
    return labels


async def _run(args: argparse.Namespace) -> int:
    clips = list_dataset(args.data)
    options = connection_options(args)
    watched: tuple[str, ...] = args.detect or ()
    async with AsyncClient(args.target, timeout=args.timeout, **options) as c:
        info = await c.get_model(args.model)
        if watched:
            _check_watched(watched, info.labels, info.activation, {label for _, label in clips})
        with contextlib.ExitStack() as stack:
            bar = None if args.quiet else stack.enter_context(_progress_bar(len(clips)))
            outcome = await classify_all(
                c,
                clips,
                args.model,
                args.concurrency,
                bar,
                watched=watched,
                labels=len(info.labels),
            )
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
    detection = None
    calibration = None
    point: OperatingPointDetection | None = None
    if watched:
        try:  # the clips that failed may have been all the negatives or all the positives
            detection = compute_detection_metrics(
                y_true,
                [outcome.windows[i] for i in scored],
                [outcome.durations[i] for i in scored],
                watched,
                min_windows=args.min_windows,
            )
        except ValueError as exc:
            print(f"error: --detect: {exc}", file=sys.stderr)
            return 1
        if args.budget is not None:
            calibration = calibrate_detection(detection, args.budget)
        print()
        print(format_detection(detection, calibration=calibration))
        calibrated = dict(info.detection_thresholds)
        if any(label in calibrated for label in watched):
            # what a stream asking for the model's operating point would detect on this data
            point = operating_point_detection(
                y_true,
                [outcome.windows[i] for i in scored],
                [outcome.durations[i] for i in scored],
                watched,
                calibrated,
                info.detection_min_windows,
            )
            print()
            print(format_operating_point(point))
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
        if detection is not None:
            report["detection"] = _detection_report(detection, calibration)
            if point is not None:
                report["detection"]["model_operating_point"] = point.as_dict()
        args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.report}")
    if args.confusion is not None:
        confusion_png(args.confusion, metrics.confusion, metrics.labels, detection, calibration)
        what = "; right: DET curves" if detection is not None else ""
        print(f"wrote {args.confusion} (rows: true labels, columns: predicted labels{what})")
    return 1 if outcome.errors else 0


def _check_watched(
    watched: Sequence[str], model_labels: Sequence[str], activation: str, data: set[str]
) -> None:
    """Refuse, before any clip is sent, a detection evaluation that cannot give curves."""
    unknown = sorted(set(watched) - set(model_labels))
    if unknown:
        raise UsageError(f"--detect names labels the model lacks: {', '.join(unknown)}")
    if activation == "none":
        raise UsageError("--detect needs scores in [0, 1]; this model's activation is 'none'")
    if not data & set(watched):
        raise UsageError("--detect: the data has no clip of a watched label (no positives)")
    if not data - set(watched):
        raise UsageError(
            "--detect: every clip's label is watched, so there is no negative audio to count "
            "false alarms on; add clips of another label (speech or noise without them)"
        )


def _detection_report(
    detection: DetectionMetrics, calibration: Calibration | None
) -> dict[str, Any]:
    report = detection.as_dict()
    if calibration is not None:
        chosen = {label: t for label, t in calibration.thresholds}
        report["calibration"] = {
            "budget_per_hour": calibration.budget_per_hour,
            "allowed_false_alarms_per_label": calibration.allowed_per_label,
            "detection_thresholds": {k: v for k, v in chosen.items() if v is not None},
            "labels_without_a_threshold": sorted(k for k, v in chosen.items() if v is None),
            "false_alarms": dict(calibration.false_alarms),
            "hits": dict(calibration.hits),
        }
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tritone evaluate``; returns the exit status (1 if any clip failed)."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.concurrency < 1:
        print("error: --concurrency must be >= 1", file=sys.stderr)
        return 2
    if args.min_windows < 1 or (args.budget is not None and args.budget < 0):
        print("error: --min-windows must be >= 1 and --budget >= 0", file=sys.stderr)
        return 2
    if args.detect is None and (args.budget is not None or args.min_windows != 1):
        print("error: --min-windows and --budget need --detect", file=sys.stderr)
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
