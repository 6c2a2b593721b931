"""Does a speech-commands model file hold exactly the ported openwakeword backbone?

The cheap half of reproducing the served file: the backbone is the port alone (no data, no
training), so its tensors must equal a fresh `load_backbone` bit for bit. The head comes out
of the synthesis, training and two fine-tunes of recipes/README.md (hours on 2 cores); this
prints its tensors' sha256 so that a rebuilt file can be compared with the committed one.

Usage: python -m recipes.speech_commands.backbone_check [--model FILE]  (default: the served one)
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from recipes.speech_commands.train import EMBED_STRIDE
from tritone_tools.training.openwakeword import load_backbone

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument(
        "--model",
        type=Path,
        default=ROOT / "model_repository" / "speech-commands" / "1" / "model.pt",
    )
    args = parser.parse_args()
    scripted = torch.jit.load(str(args.model), map_location="cpu")  # type: ignore[no-untyped-call]
    served = scripted.state_dict()
    fresh = load_backbone(window_stride=EMBED_STRIDE).state_dict()
    differ = [
        name
        for name, tensor in fresh.items()
        if not torch.equal(tensor, served.get(f"backbone.{name}", torch.empty(0)))
    ]
    digest = hashlib.sha256()
    head = sorted(name for name in served if name.startswith("head."))
    for name in head:
        digest.update(name.encode())
        digest.update(served[name].contiguous().numpy().tobytes())
    print(f"backbone: {len(fresh) - len(differ)} of {len(fresh)} tensors equal a fresh port")
    if differ:
        print("  differ:", ", ".join(differ))
    print(f"head: {len(head)} tensors, sha256 {digest.hexdigest()}")
    if differ:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
