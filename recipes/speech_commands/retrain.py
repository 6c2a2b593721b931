"""Fine-tune the shipped head on cached embeddings with realistic negatives (negatives.py).

The backbone is fixed, so only the head is retrained, on embeddings cached once: the
synthetic clips of synthesize.py (``train`` and ``extra``) plus the rows of negatives.npz
whose group is named in ``--groups``. Each of the three ensemble members starts from the
shipped model's weights (read from its TorchScript file) and trains ``--epochs`` epochs
with train.py's recipe (mixup, feature noise, label smoothing); the number of epochs and the
groups are levers compared on the VALIDATION split with calibrate.py, never on the held-out
sets.

Writes the head's state dict to ``--out`` (default .cache/speech_commands/head_retrained.pt).

Usage: python -m recipes.speech_commands.retrain --groups sentences confusable real channel
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from recipes.speech_commands.train import (
    MIXUP_ALPHA,
    SEED,
    ConvHead,
    Head,
    cached_embeddings,
    mixup_epoch,
)

ROOT = Path(__file__).resolve().parents[2]
GROUPS = (
    "sentences", "confusable", "real", "channel", "phrases",
    "neural_words", "neural_phrases", "neural_unknown", "neural_sentences",
)  # fmt: skip
# negatives.py, phrase_positives.py, neural_positives.py
FILES = ("negatives.npz", "phrases.npz", "neural.npz")


def shipped_head(model: Path) -> Head:
    scripted = torch.jit.load(str(model), map_location="cpu")  # type: ignore[no-untyped-call]
    head = Head()
    head.load_state_dict(scripted.head.state_dict())
    return head


def finetune(
    member: ConvHead, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int, lr: float
) -> None:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(member.parameters(), lr=lr, weight_decay=1e-2)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    beta = torch.distributions.Beta(torch.tensor(MIXUP_ALPHA), torch.tensor(MIXUP_ALPHA))
    for epoch in range(epochs):
        member.train()
        perm = torch.randperm(x.shape[0], generator=generator)
        total = mixup_epoch(member, x, y, perm, optimizer, loss_fn, beta, generator)
        print(f"seed {seed} epoch {epoch}: loss {total / x.shape[0]:.4f}", flush=True)
    member.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", type=Path, default=Path(".cache/speech_commands"))
    parser.add_argument(
        "--model",
        type=Path,
        default=ROOT / "model_repository" / "speech-commands" / "1" / "model.pt",
    )
    parser.add_argument("--groups", nargs="*", choices=GROUPS, default=list(GROUPS))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=Path(".cache/speech_commands/head_retrained.pt")
    )
    parser.add_argument(
        "--install", type=Path, help="fuse this trained head into --model instead of training"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.install is not None:
        install(args.install, args.model)
        return
    began = time.monotonic()
    parts_x, parts_y = [], []
    for split in ("train", "extra"):
        x, y, _ = cached_embeddings(args.cache, split)
        parts_x.append(x)
        parts_y.append(y)
    rows: dict[str, int] = {}
    for name in FILES:
        if not (args.cache / name).is_file():
            continue
        with np.load(args.cache / name) as f:
            keep = np.isin(f["groups"], args.groups)
            parts_x.append(torch.from_numpy(f["embeddings"][keep]))
            parts_y.append(torch.from_numpy(f["labels"][keep]))
            present = set(f["groups"].tolist())
            rows.update({str(g): int((f["groups"] == g).sum()) for g in present})
    missing = sorted(set(args.groups) - set(rows))
    if missing:
        raise SystemExit(
            f"no cached rows for {missing}: run negatives.py / phrase_positives.py / "
            "neural_positives.py"
        )
    x = torch.cat(parts_x)
    y = torch.cat(parts_y)
    head = shipped_head(args.model)
    for k, member in enumerate(head.members):
        assert isinstance(member, ConvHead)
        finetune(member, x, y, args.epochs, SEED + 100 + k, args.lr)
    head.eval()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), args.out)
    info = {
        "groups": args.groups,
        "rows": {
            "synthetic": int(sum(p.shape[0] for p in parts_y[:2])),
            **{g: n for g, n in rows.items() if g in args.groups},
        },
        "epochs": args.epochs,
        "lr": args.lr,
        "seconds": round(time.monotonic() - began, 1),
    }
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))


def install(head_state: Path, model: Path) -> None:
    """Fuse the ported backbone with a retrained head into the served TorchScript file,
    checked against backbone + head the way build.py checks it."""
    from recipes.speech_commands.build import SpeechCommands, script
    from recipes.speech_commands.train import EMBED_STRIDE
    from tritone_server.triton.torchscript import quiet_torchscript
    from tritone_tools.training.openwakeword import load_backbone

    head = Head()
    head.load_state_dict(torch.load(head_state, weights_only=True))
    fused = SpeechCommands(load_backbone(window_stride=EMBED_STRIDE), head)
    fused.eval()
    scripted = script(fused)
    probe = torch.from_numpy(
        (0.1 * np.random.default_rng(3).standard_normal((3, 16000))).astype(np.float32)
    )
    with torch.no_grad():
        if not torch.allclose(fused(probe), scripted(probe), atol=1e-4):
            raise SystemExit("the scripted model differs from backbone + head")
    with quiet_torchscript():
        torch.jit.save(scripted, str(model))
    print(f"wrote {model}")


if __name__ == "__main__":
    main()
