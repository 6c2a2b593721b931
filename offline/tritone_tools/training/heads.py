"""Classifier heads on backbone features, trained with early stopping on validation loss."""

import copy
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn
from tqdm import tqdm

__all__ = ["HEADS", "Head", "TrainedHead", "stratified_split", "test_split", "train_head"]

HEADS = ("logreg", "mlp")


class Head(nn.Module):
    """features [B, dim] -> logits [B, labels]: standardisation, then linear or a small MLP.

    The feature mean and standard deviation of the training split are buffers, so the
    exported model needs no preprocessing outside it.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, kind: str, dim: int, labels: int, hidden: int = 128) -> None:
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {kind!r}")
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.net: nn.Module
        if kind == "logreg":
            self.net = nn.Linear(dim, labels)
        else:
            self.net = nn.Sequential(
                nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, labels)
            )

    def forward(self, features: Tensor) -> Tensor:
        out: Tensor = self.net((features - self.mean) / self.std)
        return out


@dataclass(frozen=True)
class TrainedHead:
    head: Head
    epochs: int
    """Epochs run before early stopping."""
    best_epoch: int
    """The epoch whose weights were kept (lowest validation loss), from 1."""
    val_loss: float


def stratified_split(
    targets: npt.NDArray[np.int64], fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Clip indices (train, validation): per label round(fraction * n) clips, at least 1,
    and at least 1 left for training."""
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for label in np.unique(targets):
        members = np.flatnonzero(targets == label)
        rng.shuffle(members)
        n_val = min(max(1, round(fraction * len(members))), len(members) - 1)
        val.extend(int(i) for i in members[:n_val])
        train.extend(int(i) for i in members[n_val:])
    return np.asarray(sorted(train), dtype=np.int64), np.asarray(sorted(val), dtype=np.int64)


def test_split(
    targets: npt.NDArray[np.int64], fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Clip indices (kept, test): per label round(fraction * n) clips held out for testing
    only, leaving at least 2 (one to train on, one to validate); a label with fewer than 3
    clips gives none."""
    rng = np.random.default_rng([seed, 7])
    kept: list[int] = []
    test: list[int] = []
    for label in np.unique(targets):
        members = np.flatnonzero(targets == label)
        rng.shuffle(members)
        n_test = min(round(fraction * len(members)), len(members) - 2) if len(members) >= 3 else 0
        test.extend(int(i) for i in members[: max(n_test, 0)])
        kept.extend(int(i) for i in members[max(n_test, 0) :])
    return np.asarray(sorted(kept), dtype=np.int64), np.asarray(sorted(test), dtype=np.int64)


def train_head(
    kind: str,
    x_train: npt.NDArray[np.float32],
    y_train: npt.NDArray[np.int64],
    x_val: npt.NDArray[np.float32],
    y_val: npt.NDArray[np.int64],
    n_labels: int,
    *,
    seed: int = 0,
    max_epochs: int = 300,
    patience: int = 30,
    batch_size: int = 256,
    progress: bool = True,
) -> TrainedHead:
    """Adam on class-balanced cross-entropy; keeps the weights of the best validation loss."""
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    xv, yv = torch.from_numpy(x_val), torch.from_numpy(y_val)
    head = Head(kind, xt.shape[1], n_labels)
    head.mean.copy_(xt.mean(dim=0))
    head.std.copy_(xt.std(dim=0, unbiased=False).clamp_min(1e-6))
    counts = torch.bincount(yt, minlength=n_labels).float()
    weights = counts.sum() / (n_labels * counts.clamp_min(1.0))
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    lr = 1e-2 if kind == "logreg" else 1e-3
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(seed)
    best_loss, best_epoch, best_state = math.inf, 0, copy.deepcopy(head.state_dict())
    epoch = 0
    bar = tqdm(range(1, max_epochs + 1), desc=f"train ({kind})", unit="epoch", disable=not progress)
    for epoch in bar:
        head.train()
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), batch_size):
            rows = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(head(xt[rows]), yt[rows])
            loss.backward()
            optimizer.step()
        head.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(head(xv), yv))
        if val_loss < best_loss - 1e-6:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(head.state_dict())
        bar.set_postfix(val_loss=f"{val_loss:.4f}", best=best_epoch)
        if epoch - best_epoch >= patience:
            break
    bar.close()
    head.load_state_dict(best_state)
    head.eval()
    return TrainedHead(head, epoch, best_epoch, best_loss)
