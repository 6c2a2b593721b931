"""``tritone train``: a classifier head on a backbone, fused and written as a model directory.

    tritone train DATA --backbone speech-commands|speaker-embedding --name NAME
                  [--repository DIR] [--target HOST:PORT] [--head logreg|mlp]
                  [--val-fraction 0.2] [--test-fraction 0.2] [--seed 0]
                  [--unknown-threshold auto|none|FLOAT]
                  [--overwrite]

DATA is an audiofolder (one sub-folder per label) or a CSV of ``path,label`` rows. The clips
are decoded (any format libsndfile reads, any rate: resampled to 16 kHz mono), embedded by
the backbone's own TorchScript file from the repository, a head is trained with a
stratified validation split and early stopping on validation loss, and backbone + head are
fused into one TorchScript model written to ``DIR/NAME`` with its config.pbtxt, labels.txt
and a README.md card. A test split (``--test-fraction``, held out before anything else)
gives the card figures from clips used for nothing else; the validation split chooses the
epoch and calibrates the threshold. With ``--target`` the running
gateway loads the new model at once (no restart).

``--unknown-threshold`` adds an ``unknown`` label that wins when a clip's cosine with every
enrolled label's centroid is below the threshold (see openset.py): ``auto``
calibrates it on the validation split (the default for speaker-embedding), ``none`` turns it
off (the default for speech-commands), a number fixes it. With the threshold on, a label
folder named ``unknown`` holds people nobody enrols: its clips only calibrate the threshold.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from tqdm import tqdm

from tritone import AsyncClient, ModelInfo, TritoneError
from tritone_server.audio.dsp import frame_windows
from tritone_server.settings import Settings
from tritone_tools.evaluation.datasets import DatasetError
from tritone_tools.evaluation.metrics import compute_metrics, format_metrics
from tritone_tools.training.backbones import BACKBONES, BackboneError, load_backbone
from tritone_tools.training.data import load_dataset, split_off
from tritone_tools.training.embed import embed_clips
from tritone_tools.training.export import (
    UNKNOWN_LABEL,
    Card,
    FusedModel,
    check_name,
    config_pbtxt,
    load_scripted,
    readme,
    script,
    softmax,
    write_model_dir,
)
from tritone_tools.training.heads import HEADS, stratified_split, test_split, train_head
from tritone_tools.training.openset import (
    MAX_FALSE_REJECTION,
    calibrate,
    centroids,
    scores,
    unit_rows,
)

__all__ = ["TrainResult", "main", "train"]


def _threshold(text: str) -> str | float:
    if text in ("auto", "none"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, none or a number, got {text!r}") from None
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a cosine threshold lies in [-1, 1], got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tritone train",
        description="Train a classifier head on a backbone and write a servable model directory.",
    )
    parser.add_argument("data", metavar="DATA", help="audiofolder (a folder per label) or CSV")
    parser.add_argument("--backbone", required=True, choices=BACKBONES)
    parser.add_argument("--name", required=True, help="the new model's name (its directory)")
    parser.add_argument(
        "--repository",
        type=Path,
        default=Path(os.environ.get("TRITONE_MODEL_REPOSITORY") or Settings().model_repository),
        help="model repository holding the backbone, where the model is written "
        "(default: $TRITONE_MODEL_REPOSITORY or the gateway's default, %(default)s)",
    )
    parser.add_argument("--target", help="gateway host:port: load the new model there")
    parser.add_argument("--token", default=os.environ.get("TRITONE_TOKEN") or None)
    parser.add_argument("--head", choices=HEADS, default="logreg", help="default: %(default)s")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="default: %(default)s")
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="clips per label held out for the card's test figures only (labels with fewer "
        "than 3 clips give none; 0 turns the test split off; default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument(
        "--unknown-threshold",
        type=_threshold,
        default=None,
        help="auto, none or a cosine in [-1, 1] (default: auto for speaker-embedding, "
        "none for speech-commands)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    labels: list[str]
    accuracy: float
    threshold: float | None
    false_rejection: float | None
    false_acceptance: float | None
    loaded: ModelInfo | None


def _clip_scores(
    model: torch.nn.Module,
    waves: Sequence[npt.NDArray[np.float32]],
    window: int,
    hop: int,
    progress: bool,
) -> npt.NDArray[np.float32]:
    """Clip-level softmax scores as the gateway computes them: per window, then the mean."""
    rows = []
    with torch.inference_mode():
        for wave in tqdm(waves, desc="evaluate", unit="clip", disable=not progress):
            framed, _ = frame_windows(wave, window, hop)
            logits = model(torch.from_numpy(np.ascontiguousarray(framed))).numpy()
            rows.append(softmax(logits).mean(axis=0))
    out: npt.NDArray[np.float32] = np.stack(rows).astype(np.float32)
    return out


def _split_negatives(
    negatives: list[npt.NDArray[np.float32]], fraction: float, seed: int
) -> tuple[list[npt.NDArray[np.float32]], list[npt.NDArray[np.float32]]]:
    """(calibration, test) clips of the `unknown` folder: round(fraction * n) of them (at
    least one when there are two or more and fraction > 0) only test the threshold."""
    if fraction <= 0.0 or len(negatives) < 2:
        return negatives, []
    n_test = min(max(1, round(fraction * len(negatives))), len(negatives) - 1)
    order = np.random.default_rng([seed, 11]).permutation(len(negatives))
    test = {int(i) for i in order[:n_test]}
    return (
        [w for i, w in enumerate(negatives) if i not in test],
        [w for i, w in enumerate(negatives) if i in test],
    )


@dataclass(frozen=True)
class TestFigures:
    """The card's figures from clips used for nothing else."""

    clips: int
    accuracy: float
    false_rejection: float | None
    strangers: int
    false_acceptance: float | None


def _test_figures(
    model: torch.nn.Module,
    data_labels: Sequence[str],
    served: Sequence[str],
    waves: Sequence[npt.NDArray[np.float32]],
    truth: Sequence[str],
    strangers: Sequence[npt.NDArray[np.float32]],
    window: int,
    hop: int,
    rejecting: bool,
) -> TestFigures | None:
    if not waves:
        return None
    predicted = [served[k] for k in _clip_scores(model, waves, window, hop, False).argmax(axis=1)]
    accuracy = compute_metrics(list(truth), predicted, labels=list(data_labels)).accuracy
    rejected = float(np.mean([p == UNKNOWN_LABEL for p in predicted])) if rejecting else None
    accepted = None
    if strangers:
        answers = _clip_scores(model, strangers, window, hop, False).argmax(axis=1)
        accepted = float(np.mean([served[k] != UNKNOWN_LABEL for k in answers]))
    return TestFigures(len(waves), accuracy, rejected, len(strangers), accepted)


def train(args: argparse.Namespace, argv: Sequence[str]) -> TrainResult:
    name = check_name(args.name)
    if not 0.0 < args.val_fraction < 1.0:
        raise ValueError(f"--val-fraction must lie between 0 and 1, got {args.val_fraction}")
    if not 0.0 <= args.test_fraction < 1.0:
        raise ValueError(f"--test-fraction must lie in [0, 1), got {args.test_fraction}")
    repository: Path = args.repository
    if (repository / name).exists() and not args.overwrite:
        raise FileExistsError(f"{repository / name} exists; pass --overwrite to replace it")
    progress = not args.quiet
    mode = args.unknown_threshold
    if mode is None:
        mode = "auto" if args.backbone == "speaker-embedding" else "none"
    backbone = load_backbone(args.backbone, repository)
    data = load_dataset(args.data, backbone.sample_rate, progress=progress)
    negatives: list[npt.NDArray[np.float32]] = []
    if mode != "none":
        # Clips labelled `unknown` (people nobody enrols) only calibrate the threshold.
        data, negatives = split_off(data, UNKNOWN_LABEL)
    n_labels = len(data.labels)
    kept, test_clips = test_split(data.targets, args.test_fraction, args.seed)
    negatives, test_negatives = _split_negatives(negatives, args.test_fraction, args.seed)
    in_kept, in_val_of_kept = stratified_split(data.targets[kept], args.val_fraction, args.seed)
    train_clips, val_clips = kept[in_kept], kept[in_val_of_kept]
    feats = embed_clips(backbone, data.waves, progress=progress)
    in_train = np.isin(feats.clip, train_clips)
    in_val = np.isin(feats.clip, val_clips)
    y_rows = data.targets[feats.clip]
    trained = train_head(
        args.head,
        feats.x[in_train],
        y_rows[in_train],
        feats.x[in_val],
        y_rows[in_val],
        n_labels,
        seed=args.seed,
        progress=progress,
    )
    head = trained.head
    with torch.inference_mode():
        val_logits = head(torch.from_numpy(feats.x[in_val])).numpy()
    cents = None
    calibration = None
    if mode != "none":
        cents = centroids(feats.x[in_train], y_rows[in_train], n_labels)
        genuine, impostor = scores(feats.x[in_val], y_rows[in_val], cents)
        if negatives:
            negative_x = embed_clips(backbone, negatives, progress=progress).x
            impostor = np.concatenate([impostor, (unit_rows(negative_x) @ cents.T).max(axis=1)])
        calibration = calibrate(
            genuine,
            impostor,
            None if mode == "auto" else float(mode),
            max_false_rejection=MAX_FALSE_REJECTION,
        )
    fused = FusedModel(
        backbone.module,
        head,
        torch.from_numpy(cents) if cents is not None else None,
        calibration.threshold if calibration is not None else 0.0,
    )
    scripted = script(fused)
    served = [*data.labels, *([UNKNOWN_LABEL] if calibration is not None else [])]

    # Validation: the exported model, window by window and averaged as the gateway does.
    val_waves = [data.waves[i] for i in val_clips]
    clip_scores = _clip_scores(
        scripted, val_waves, backbone.window_samples, backbone.hop_samples, progress
    )
    y_true = [data.labels[data.targets[i]] for i in val_clips]
    y_pred = [served[k] for k in clip_scores.argmax(axis=1)]
    metrics = compute_metrics(y_true, y_pred, labels=data.labels)
    closed_rows = softmax(val_logits)
    val_row_clip = feats.clip[in_val]
    closed_pred = [int(closed_rows[val_row_clip == i].mean(axis=0).argmax()) for i in val_clips]
    closed_accuracy = float(np.mean(np.asarray(closed_pred) == data.targets[val_clips]))

    test = _test_figures(
        scripted,
        data.labels,
        served,
        [data.waves[i] for i in test_clips],
        [data.labels[data.targets[i]] for i in test_clips],
        test_negatives,
        backbone.window_samples,
        backbone.hop_samples,
        calibration is not None,
    )
    counts = {
        label: (
            int(np.sum(data.targets[train_clips] == k)),
            int(np.sum(data.targets[val_clips] == k)),
            int(np.sum(data.targets[test_clips] == k)),
        )
        for k, label in enumerate(data.labels)
    }
    description = (
        f"{args.head} head on the {backbone.name} backbone, trained by `tritone train` on "
        f"{len(data.waves)} clips of {n_labels} labels; validation accuracy "
        f"{metrics.accuracy:.3f}"
        + (
            f"; answers {UNKNOWN_LABEL!r} below cosine {calibration.threshold:.3f} to the "
            "nearest enrolled centroid"
            if calibration is not None
            else ""
        )
        + "."
    )
    card = Card(
        name=name,
        backbone=backbone,
        head="logistic-regression" if args.head == "logreg" else "MLP",
        labels=served,
        counts=counts,
        data=str(args.data),
        command="tritone train " + shlex.join(argv),
        epochs=trained.epochs,
        best_epoch=trained.best_epoch,
        accuracy=metrics.accuracy,
        closed_set_accuracy=closed_accuracy,
        per_class=[(c.label, c.precision, c.recall, c.f1, c.support) for c in metrics.per_class],
        macro=(metrics.macro_precision, metrics.macro_recall, metrics.macro_f1),
        confusion_labels=list(metrics.labels),
        confusion=[list(row) for row in metrics.confusion],
        threshold=calibration.threshold if calibration is not None else None,
        false_rejection=calibration.false_rejection if calibration is not None else None,
        false_acceptance=calibration.false_acceptance if calibration is not None else None,
        negatives=len(negatives),
        test=test,
        threshold_mode=(
            "given"
            if mode != "auto"
            else "calibrated on the validation split: fewest errors, raised where needed so "
            f"that at most {100 * MAX_FALSE_REJECTION:g}% of enrolled validation clips fall "
            "below, given enough of them"
            + (f" and {len(negatives)} clips labelled `{UNKNOWN_LABEL}`" if negatives else "")
        ),
    )
    model_dir = write_model_dir(
        repository,
        name,
        scripted,
        config_pbtxt(
            name,
            backbone,
            served,
            description,
            calibration.threshold if calibration is not None else None,
        ),
        served,
        readme(card),
        overwrite=args.overwrite,
    )
    # Self-check: the file on disk computes what was just evaluated.
    reloaded = load_scripted(model_dir / "1" / "model.pt")
    check = _clip_scores(
        reloaded, val_waves[:1], backbone.window_samples, backbone.hop_samples, False
    )
    if not np.allclose(check, clip_scores[:1], atol=1e-4):
        raise RuntimeError(f"the written {model_dir / '1' / 'model.pt'} disagrees with the model")

    print(f"wrote {model_dir}")
    print(
        f"{len(data.waves)} clips, {n_labels} labels ({len(train_clips)} training, "
        f"{len(val_clips)} validation); head stopped at epoch {trained.epochs}, kept epoch "
        f"{trained.best_epoch}"
    )
    print(format_metrics(metrics))
    if test is not None:
        print(
            f"test split ({test.clips} clips used for nothing else): accuracy "
            f"{test.accuracy:.4f}"
            + (
                f", enrolled clips answered {UNKNOWN_LABEL} {100 * test.false_rejection:.1f}%"
                if test.false_rejection is not None
                else ""
            )
            + (
                f", held-out {UNKNOWN_LABEL} clips accepted {100 * test.false_acceptance:.1f}%"
                if test.false_acceptance is not None
                else ""
            )
        )
    if calibration is not None:
        print(
            f"unknown threshold {calibration.threshold:.4f} ({card.threshold_mode}): "
            f"validation false rejections {100 * calibration.false_rejection:.1f}%, "
            f"simulated impostors accepted {100 * calibration.false_acceptance:.1f}%"
        )
    loaded = None
    if args.target:
        loaded = asyncio.run(_load(args.target, args.token, name))
        print(
            f"loaded {loaded.name} v{loaded.version} on {args.target}: "
            f"{len(loaded.labels)} labels, ready={loaded.ready}"
        )
    return TrainResult(
        model_dir,
        served,
        metrics.accuracy,
        calibration.threshold if calibration is not None else None,
        calibration.false_rejection if calibration is not None else None,
        calibration.false_acceptance if calibration is not None else None,
        loaded,
    )


async def _load(target: str, token: str | None, name: str) -> ModelInfo:
    async with AsyncClient(target, token=token, timeout=300.0) as client:
        return await client.load_model(name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tritone train``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        train(args, argv)
    except TritoneError as exc:
        print(
            f"error: the model was written but loading it failed: {exc.code.name}: {exc.details}",
            file=sys.stderr,
        )
    except (DatasetError, BackboneError, FileExistsError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    else:
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
