"""Train the speech-commands head on the ported openwakeword embeddings.

Each cached 1 s clip is embedded once with the ported backbone ([6, 96] per clip: six
76-frame windows at a stride of 4 mel frames, twice as dense as openwakeword's 8; the
openwakeword weights are unchanged). A small head over the sequence is trained with mixup,
feature noise and label smoothing, a validation split (10 % of the training clips) and early
stopping on validation loss, then evaluated on the held-out voices. Seeds are fixed. The
`extra` split, when cached, adds training rows (the validation split comes from `train`).

Writes .cache/speech_commands/head.pt and metrics.json.

Usage: python -m recipes.speech_commands.train [--cache .cache/speech_commands]
"""

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from recipes.speech_commands.synthesize import CLIP_SAMPLES, LABELS
from tritone_tools.training.openwakeword import EMBEDDING_DIM, load_backbone, windows_for

SEED = 20240601
EMBED_STRIDE = 4  # mel frames between embedding windows (openwakeword: 8)
N_WINDOWS = windows_for(CLIP_SAMPLES, EMBED_STRIDE)
MIXUP_ALPHA = 0.4
ENSEMBLE = 3  # ConvHeads per Head, seeds SEED, SEED + 1, ...


class ConvHead(nn.Module):
    """embeddings [B, 6, 96] -> logits [B, 12]: per-step LayerNorm, two 1-D convolutions
    over time (kernel 3), then an MLP over the flattened sequence (position matters: the
    word may sit anywhere in the second, and the convolutions see its neighbourhood)."""

    def __init__(
        self, windows: int = N_WINDOWS, channels: int = 192, hidden: int = 256, dropout: float = 0.3
    ):
        super().__init__()
        self.norm = nn.LayerNorm(EMBEDDING_DIM)
        self.conv = nn.Sequential(
            nn.Conv1d(EMBEDDING_DIM, channels, 3, padding=1),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv1d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.out = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(channels * windows, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, len(LABELS)),
        )

    def forward(self, embeddings: Tensor) -> Tensor:
        h: Tensor = self.conv(self.norm(embeddings).transpose(1, 2))
        out: Tensor = self.out(h)
        return out


class Head(nn.Module):
    """embeddings [B, 6, 96] -> logits [B, 12]: the log of the mean softmax of
    ``members`` ConvHeads trained from different seeds (softmax of it = mean probability)."""

    def __init__(self, members: int = ENSEMBLE) -> None:
        super().__init__()
        self.members = nn.ModuleList([ConvHead() for _ in range(members)])

    def forward(self, embeddings: Tensor) -> Tensor:
        probs = torch.stack([torch.softmax(m(embeddings), dim=1) for m in self.members])
        return torch.log(probs.mean(dim=0) + 1e-12)


def embed(pcm: npt.NDArray[np.int16], batch: int = 64) -> npt.NDArray[np.float32]:
    backbone = load_backbone(window_stride=EMBED_STRIDE)
    parts: list[npt.NDArray[np.float32]] = []
    with torch.no_grad():
        for i in range(0, pcm.shape[0], batch):
            x = torch.from_numpy(pcm[i : i + batch].astype(np.float32) / 32768.0)
            parts.append(backbone(x).numpy())
    return np.concatenate(parts)


def save_embedded_rows(
    path: Path,
    windows: list[npt.NDArray[np.float32]],
    labels: list[int],
    groups: list[str],
) -> str:
    """Embed 1 s windows (float in [-1, 1]) and cache them with their labels and groups, as
    retrain.py reads them; a one-line account of what was written."""
    pcm = np.round(np.clip(np.stack(windows), -1, 1) * 32767).astype(np.int16)
    emb = embed(pcm)
    np.savez(
        path,
        embeddings=emb,
        labels=np.asarray(labels, dtype=np.int64),
        groups=np.asarray(groups),
    )
    counts = {g: groups.count(g) for g in sorted(set(groups))}
    return f"{path.stem}: {emb.shape} {counts}"


def cached_embeddings(cache: Path, split: str) -> tuple[Tensor, Tensor, npt.NDArray[Any]]:
    target = cache / f"embeddings_{split}.npz"
    source = cache / f"clips_{split}.npz"
    clips = np.load(source)
    stale = not target.exists() or target.stat().st_mtime < source.stat().st_mtime
    if not stale:
        with np.load(target) as cached:
            stale = "stride" not in cached or int(cached["stride"]) != EMBED_STRIDE
    if stale:
        began = time.monotonic()
        emb = embed(clips["pcm"])
        np.savez(target, embeddings=emb, stride=np.int64(EMBED_STRIDE))
        print(f"embedded {split}: {emb.shape} in {time.monotonic() - began:.0f} s")
    emb = np.load(target)["embeddings"]
    return torch.from_numpy(emb), torch.from_numpy(clips["labels"]), clips["families"]


def confusion(pred: Tensor, truth: Tensor, n: int = len(LABELS)) -> npt.NDArray[np.int64]:
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (truth.numpy(), pred.numpy()), 1)
    return m


def macro_f1(m: npt.NDArray[np.int64]) -> float:
    tp = np.diag(m).astype(np.float64)
    precision = tp / np.maximum(m.sum(axis=0), 1)
    recall = tp / np.maximum(m.sum(axis=1), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(f1.mean())


def mixup_epoch(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    order: Tensor,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    beta: torch.distributions.Beta,
    generator: torch.Generator,
) -> float:
    """One epoch over `order` in batches of 128 with feature noise and mixup (cheap
    augmentation in embedding space); the summed loss. Shared by train and retrain."""
    total = 0.0
    for i in range(0, order.numel(), 128):
        b = order[i : i + 128]
        xb = x[b] + 0.05 * torch.randn(x[b].shape, generator=generator)
        lam = float(beta.sample())
        mate = torch.randperm(b.numel(), generator=generator)
        out = model(lam * xb + (1.0 - lam) * xb[mate])
        loss = lam * loss_fn(out, y[b]) + (1.0 - lam) * loss_fn(out, y[b][mate])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * b.numel()
    return total


def train_member(
    x: Tensor,
    y: Tensor,
    train_idx: Tensor,
    val_idx: Tensor,
    seed: int,
    max_epochs: int = 200,
    patience: int = 15,
) -> tuple[ConvHead, int, int]:
    """One ConvHead; returns it at its best validation loss, that epoch and the epochs run."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    head = ConvHead()
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-2)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    beta = torch.distributions.Beta(torch.tensor(MIXUP_ALPHA), torch.tensor(MIXUP_ALPHA))
    best = (float("inf"), 0, {k: v.clone() for k, v in head.state_dict().items()})
    epoch = 0
    for epoch in range(max_epochs):
        head.train()
        perm = train_idx[torch.randperm(train_idx.numel(), generator=generator)]
        mixup_epoch(head, x, y, perm, optimizer, loss_fn, beta, generator)
        head.eval()
        with torch.no_grad():
            val_logits = head(x[val_idx])
            val_loss = float(loss_fn(val_logits, y[val_idx]))
            val_acc = float((val_logits.argmax(1) == y[val_idx]).float().mean())
        if val_loss < best[0]:
            best = (val_loss, epoch, {k: v.clone() for k, v in head.state_dict().items()})
        elif epoch - best[1] >= patience:
            break
        if epoch % 10 == 0:
            print(f"seed {seed} epoch {epoch}: val loss {val_loss:.4f} acc {val_acc:.4f}")
    head.load_state_dict(best[2])
    head.eval()
    return head, best[1], epoch + 1


def train_head(
    x: Tensor, y: Tensor, seed: int = SEED, extra: int = 0
) -> tuple[Head, dict[str, Any]]:
    """ENSEMBLE ConvHeads (seeds seed, seed + 1, ...) on one fixed validation split.

    The last ``extra`` rows of x (the extra split) are training rows only; the validation
    split is drawn from the others, so it is the same as without them."""
    n_base = x.shape[0] - extra
    order = torch.randperm(n_base, generator=torch.Generator().manual_seed(seed))
    n_val = n_base // 10
    val_idx = order[:n_val]
    train_idx = torch.cat([order[n_val:], torch.arange(n_base, x.shape[0])])
    head = Head()
    best_epochs: list[int] = []
    epochs_run: list[int] = []
    for k in range(ENSEMBLE):
        member, best_epoch, ran = train_member(x, y, train_idx, val_idx, seed + k)
        head.members[k].load_state_dict(member.state_dict())
        best_epochs.append(best_epoch)
        epochs_run.append(ran)
    head.eval()
    with torch.no_grad():
        val_acc = float((head(x[val_idx]).argmax(1) == y[val_idx]).float().mean())
    return head, {
        "best_epochs": best_epochs,
        "epochs_run": epochs_run,
        "val_accuracy": val_acc,
    }


def evaluate(head: Head, x: Tensor, y: Tensor, families: npt.NDArray[Any]) -> dict[str, Any]:
    with torch.no_grad():
        pred = head(x).argmax(1)
    m = confusion(pred, y)
    per_family: dict[str, float] = {}
    fam = np.asarray(families)
    for name in sorted({f.split("+")[0] if f.startswith("espeak") else f for f in fam}):
        mask = np.array([(f.split("+")[0] if f.startswith("espeak") else f) == name for f in fam])
        per_family[name] = float((pred.numpy()[mask] == y.numpy()[mask]).mean())
    return {
        "accuracy": float(np.trace(m) / m.sum()),
        "macro_f1": macro_f1(m),
        "clips": int(m.sum()),
        "confusion": m.tolist(),
        "per_family_accuracy": per_family,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", type=Path, default=Path(".cache/speech_commands"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    began = time.monotonic()
    x_train, y_train, _ = cached_embeddings(args.cache, "train")
    n_extra = 0
    if (args.cache / "clips_extra.npz").exists():
        x_extra, y_extra, _ = cached_embeddings(args.cache, "extra")
        n_extra = int(y_extra.numel())
        x_train = torch.cat([x_train, x_extra])
        y_train = torch.cat([y_train, y_extra])
    x_eval, y_eval, fam_eval = cached_embeddings(args.cache, "eval")
    embedded = time.monotonic()
    head, fit = train_head(x_train, y_train, extra=n_extra)
    trained = time.monotonic()
    held: dict[str, Any] = evaluate(head, x_eval, y_eval, fam_eval)
    metrics: dict[str, Any] = {
        "labels": list(LABELS),
        "seed": SEED,
        "embed_stride": EMBED_STRIDE,
        "windows": N_WINDOWS,
        "ensemble": ENSEMBLE,
        "mixup_alpha": MIXUP_ALPHA,
        "train_clips": int(y_train.numel()),
        "extra_clips": n_extra,
        "fit": fit,
        "held_out": held,
        "seconds_embedding": round(embedded - began, 1),
        "seconds_training": round(trained - embedded, 1),
    }
    torch.save(head.state_dict(), args.cache / "head.pt")
    (args.cache / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(json.dumps(fit))
    print(f"held-out accuracy {held['accuracy']:.4f} macro-F1 {held['macro_f1']:.4f}")
    print(json.dumps(held["per_family_accuracy"], indent=1))
    for label, row in zip(LABELS, held["confusion"], strict=True):
        print(f"{label:>8} " + " ".join(f"{v:4d}" for v in row))


if __name__ == "__main__":
    main()
