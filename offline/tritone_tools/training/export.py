"""Fuse backbone + head (+ the ``unknown`` rule) into one TorchScript model and write a
complete Triton model directory: config.pbtxt, labels.txt, 1/model.pt, README.md."""

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from tritone_server.triton.model_config import TensorConfig, render_config
from tritone_server.triton.torchscript import device_constants
from tritone_tools.training.backbones import Backbone, quiet_jit

__all__ = [
    "UNKNOWN_LABEL",
    "UNKNOWN_SCALE",
    "Card",
    "FusedModel",
    "check_name",
    "config_pbtxt",
    "load_scripted",
    "script",
    "write_model_dir",
]

UNKNOWN_LABEL = "unknown"
UNKNOWN_SCALE = 20.0
"""Logit units per unit of cosine below (or above) the threshold."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"model name {name!r} must start with a letter or digit and hold only letters, "
            "digits, '.', '_' and '-' (at most 128 characters)"
        )
    return name


class FusedModel(nn.Module):
    """waveform FP32 [B, N] -> logits FP32 [B, L] (or [B, L + 1] with ``unknown`` last).

    With rejection on, the extra logit is
    ``max(logits) + scale * (threshold - max_k cos(features, centroid[k]))``: it beats
    every label exactly when the clip is below the threshold for *every* enrolled label's
    centroid (far from every enrolled speaker: the nearest one decides, not the label the
    head happens to rank first), and it is a smooth function of that distance, so after
    softmax the ``unknown`` score grows the further below the threshold a clip falls.
    """

    centroids: Tensor

    def __init__(
        self,
        features: nn.Module,
        head: nn.Module,
        centroids: Tensor | None = None,
        threshold: float = 0.0,
        scale: float = UNKNOWN_SCALE,
    ) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.reject = centroids is not None
        self.register_buffer(
            "centroids", centroids.clone() if centroids is not None else torch.zeros(1, 1)
        )
        self.threshold = float(threshold)
        self.scale = float(scale)

    def forward(self, waveform: Tensor) -> Tensor:
        feats = self.features(waveform.to(torch.float32))
        logits: Tensor = self.head(feats)
        if not self.reject:
            return logits
        unit = feats / torch.linalg.vector_norm(feats, 2.0, dim=1, keepdim=True).clamp_min(1e-12)
        sims = torch.matmul(unit, self.centroids.t())
        nearest = sims.max(dim=1, keepdim=True).values
        best = logits.max(dim=1, keepdim=True).values
        unknown = best + self.scale * (self.threshold - nearest)
        return torch.cat([logits, unknown], dim=1)


def script(model: FusedModel) -> torch.jit.ScriptModule:
    model.eval()
    with quiet_jit():
        scripted: torch.jit.ScriptModule = torch.jit.script(model)
    pinned = device_constants(scripted)
    if pinned:  # the model must run on whatever device Triton gives it
        raise RuntimeError(f"the fused model names a device: {pinned}")
    return scripted


def load_scripted(path: Path) -> Any:
    with quiet_jit():
        module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    module.eval()
    return module


def config_pbtxt(
    name: str,
    backbone: Backbone,
    labels: list[str],
    description: str,
    threshold: float | None = None,
) -> str:
    """The production config (tritone_server.triton.model_config), windowed like the backbone; with
    rejection on, ``unknown_threshold`` carries the calibrated cosine threshold, so that a
    service comparing `Embed` vectors itself can use the same rule."""
    parameters = {
        "task": "audio-classification",
        "sample_rate": str(backbone.sample_rate),
        "window_samples": str(backbone.window_samples),
        "hop_samples": str(backbone.hop_samples),
        "activation": "softmax",
        "aggregation": "mean",
        "description": description.encode("ascii", "replace").decode("ascii"),
    }
    if threshold is not None:
        parameters["unknown_threshold"] = f"{threshold:.6f}"
    return render_config(
        name,
        inputs=[TensorConfig("waveform", (-1,))],
        outputs=[TensorConfig("logits", (len(labels),), label_file=True)],
        parameters=parameters,
        labels=labels,
        max_batch_size=backbone.max_batch_size,
    )


@dataclass
class Card:
    """What the model card says; filled by the trainer."""

    name: str
    backbone: Backbone
    head: str
    labels: list[str]
    """Served labels, ``unknown`` last when rejection is on."""
    counts: dict[str, tuple[int, int, int]]
    """Per data label: (training clips, validation clips, test clips)."""
    data: str
    command: str
    epochs: int
    best_epoch: int
    accuracy: float
    closed_set_accuracy: float
    per_class: list[tuple[str, float, float, float, int]]
    macro: tuple[float, float, float]
    confusion_labels: list[str]
    confusion: list[list[int]]
    threshold: float | None = None
    false_rejection: float | None = None
    false_acceptance: float | None = None
    threshold_mode: str = "none"
    negatives: int = 0
    """Clips labelled ``unknown`` that calibrated the threshold."""
    extra: list[str] = field(default_factory=list)
    test: Any = None
    """The test split's figures (training.cli.TestFigures), or None without one."""


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def readme(card: Card) -> str:
    b = card.backbone
    if b.window_samples:
        windowing = (
            f"windows of {b.window_samples} samples ({b.window_samples / b.sample_rate:.2f} s) "
            f"every {b.hop_samples} samples; the gateway averages the windows' softmax scores"
        )
    else:
        windowing = "the whole clip is one window (`window_samples` 0)"
    counts = _table(
        ["label", "training clips", "validation clips", "test clips"],
        [[label, str(t), str(v), str(e)] for label, (t, v, e) in card.counts.items()],
    )
    test = card.test
    if test is None:
        tested = (
            "## Test split\n\nNone (`--test-fraction 0`, or fewer than 3 clips per label): the "
            "figures above come from the validation split, which also chose the epoch"
            + (" and calibrated the threshold." if card.threshold is not None else ".")
            + "\n"
        )
    else:
        rejection = (
            f" Enrolled clips answered `{UNKNOWN_LABEL}` (false rejections): "
            f"**{100 * test.false_rejection:.1f}%**."
            if test.false_rejection is not None
            else ""
        )
        acceptance = (
            f" Clips of the data's `{UNKNOWN_LABEL}` folder held out from calibration "
            f"({test.strangers}, people nobody enrols) accepted as an enrolled label (false "
            f"acceptances): **{100 * test.false_acceptance:.1f}%**."
            if test.false_acceptance is not None
            else ""
        )
        tested = f"""## Test split

{test.clips} clips held out before training, used for nothing else (not trained on, not
used to choose the epoch or to calibrate a threshold), scored with the exported model as
the gateway runs it. Accuracy: **{test.accuracy:.4f}**.{rejection}{acceptance}
"""
    per_class = _table(
        ["label", "precision", "recall", "F1", "support"],
        [[lab, f"{p:.3f}", f"{r:.3f}", f"{f:.3f}", str(s)] for lab, p, r, f, s in card.per_class]
        + [["macro avg", *(f"{v:.3f}" for v in card.macro), ""]],
    )
    confusion = _table(
        ["true \\ predicted", *card.confusion_labels],
        [
            [label, *(str(v) for v in row)]
            for label, row in zip(card.confusion_labels, card.confusion, strict=True)
        ],
    )
    negatives = (
        f", and the {card.negatives} clips of the data's `{UNKNOWN_LABEL}` folder: people "
        "nobody enrols, used for this calibration only"
        if card.negatives
        else ""
    )
    if card.threshold is not None:
        unknown = f"""## Unknown inputs

The model answers `{UNKNOWN_LABEL}` (its last label) when a clip is far from every enrolled
label: the cosine similarity of the clip's backbone features with each label's centroid
(the normalised mean of its training clips' normalised features) is below
**{card.threshold:.4f}** for all of them ({card.threshold_mode}). Inside the TorchScript
model the extra logit is `max(logits) + {UNKNOWN_SCALE:g} * (threshold - nearest cosine)`,
so `{UNKNOWN_LABEL}` wins exactly when the nearest centroid is below the threshold, and its
softmax score grows with the distance. The threshold is also the config parameter
`unknown_threshold`, for services that compare `Embed` vectors themselves. On the
validation split: {100 * (card.false_rejection or 0.0):.1f}% of enrolled
clips fall below the threshold (false rejections); {100 * (card.false_acceptance or 0.0):.1f}%
of impostors pass it (each validation clip scored against the *other* labels' centroids,
as if its own label had not been enrolled{negatives}).
"""
    else:
        unknown = "## Unknown inputs\n\nNo rejection: the model always names one of its labels.\n"
    extra = "\n".join(card.extra)
    return f"""# {card.name}

Trained with `tritone train`: a {card.head} head on the `{b.name}` backbone, fused into one
TorchScript model.

- Task: audio-classification, activation softmax, {len(card.labels)} labels (labels.txt):
  {", ".join(f"`{x}`" for x in card.labels)}.
- Input `waveform`: FP32 [batch, samples], mono, {b.sample_rate} Hz; {windowing}.
- Output `logits`: FP32 [batch, {len(card.labels)}].
- Backbone: {b.source}.
- Data: `{card.data}`.

{counts}

## Validation

Stratified validation split; the head stopped after {card.epochs} epochs and keeps the
weights of epoch {card.best_epoch} (lowest validation loss). Scored with the exported
model as the gateway runs it, `{UNKNOWN_LABEL}` answers included (an `{UNKNOWN_LABEL}` answer
for an enrolled label is an error).

- Accuracy: **{card.accuracy:.4f}**
- Accuracy of the head alone (closed set, no `{UNKNOWN_LABEL}`): {card.closed_set_accuracy:.4f}

{per_class}

Confusion matrix (rows: true labels, columns: predicted):

{confusion}

{unknown}
{tested}
{extra}
## How it was built

    {card.command}

## Licence

The head is yours (trained on your data). The backbone keeps its own licence: see the
`{b.name}` model's README.md.
"""


def write_model_dir(
    repository: Path,
    name: str,
    scripted: torch.jit.ScriptModule,
    config: str,
    labels: list[str],
    card_text: str,
    *,
    overwrite: bool,
) -> Path:
    """Write the directory next to its final place, then move it in."""
    final = repository / name
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} exists; pass --overwrite to replace it")
    repository.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=repository))
    try:
        (staging / "1").mkdir()
        with quiet_jit():
            torch.jit.save(scripted, str(staging / "1" / "model.pt"))
        (staging / "config.pbtxt").write_text(config, encoding="utf-8")
        (staging / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
        (staging / "README.md").write_text(card_text, encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def softmax(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: npt.NDArray[np.float32] = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    return out
