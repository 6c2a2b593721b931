"""Train the speech-commands head on the ported openwakeword embeddings.

Each cached 1 s clip is embedded once with the ported backbone ([3, 96] per clip: three
76-frame windows at stride 8). A small MLP over the flattened sequence is trained with a
validation split (10 % of the training clips) and early stopping on validation loss, then
evaluated on the held-out voices. Seeds are fixed.

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

from recipes.speech_commands.port_openwakeword import EMBEDDING_DIM, load_backbone, windows_for
from recipes.speech_commands.synthesize import CLIP_SAMPLES, LABELS

SEED = 20240601
N_WINDOWS = windows_for(CLIP_SAMPLES)


class Head(nn.Module):
    """embeddings [B, 3, 96] -> logits [B, 12]."""

    def __init__(self, windows: int = N_WINDOWS, hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(1),
            nn.LayerNorm(windows * EMBEDDING_DIM),
            nn.Linear(windows * EMBEDDING_DIM, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, len(LABELS)),
        )

    def forward(self, embeddings: Tensor) -> Tensor:
        out: Tensor = self.net(embeddings)
        return out


def embed(pcm: npt.NDArray[np.int16], batch: int = 64) -> npt.NDArray[np.float32]:
    backbone = load_backbone()
    parts: list[npt.NDArray[np.float32]] = []
    with torch.no_grad():
        for i in range(0, pcm.shape[0], batch):
            x = torch.from_numpy(pcm[i : i + batch].astype(np.float32) / 32768.0)
            parts.append(backbone(x).numpy())
    return np.concatenate(parts)


def cached_embeddings(cache: Path, split: str) -> tuple[Tensor, Tensor, npt.NDArray[Any]]:
    target = cache / f"embeddings_{split}.npz"
    source = cache / f"clips_{split}.npz"
    clips = np.load(source)
    if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
        began = time.monotonic()
        emb = embed(clips["pcm"])
        np.savez(target, embeddings=emb)
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


def train_head(
    x: Tensor, y: Tensor, seed: int = SEED, max_epochs: int = 200, patience: int = 15
) -> tuple[Head, dict[str, float]]:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(x.shape[0], generator=generator)
    n_val = x.shape[0] // 10
    val_idx, train_idx = order[:n_val], order[n_val:]
    head = Head()
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-2)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    best = (float("inf"), 0, {k: v.clone() for k, v in head.state_dict().items()})
    epoch = 0
    for epoch in range(max_epochs):
        head.train()
        perm = train_idx[torch.randperm(train_idx.numel(), generator=generator)]
        for i in range(0, perm.numel(), 128):
            b = perm[i : i + 128]
            # Feature noise: a cheap extra augmentation in embedding space.
            xb = x[b] + 0.05 * torch.randn(x[b].shape, generator=generator)
            loss = loss_fn(head(xb), y[b])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
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
            print(f"epoch {epoch}: val loss {val_loss:.4f} acc {val_acc:.4f}")
    head.load_state_dict(best[2])
    head.eval()
    with torch.no_grad():
        val_acc = float((head(x[val_idx]).argmax(1) == y[val_idx]).float().mean())
    return head, {
        "best_epoch": float(best[1]),
        "epochs_run": float(epoch + 1),
        "val_loss": best[0],
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
    x_eval, y_eval, fam_eval = cached_embeddings(args.cache, "eval")
    embedded = time.monotonic()
    head, fit = train_head(x_train, y_train)
    trained = time.monotonic()
    held: dict[str, Any] = evaluate(head, x_eval, y_eval, fam_eval)
    metrics: dict[str, Any] = {
        "labels": list(LABELS),
        "seed": SEED,
        "train_clips": int(y_train.numel()),
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
