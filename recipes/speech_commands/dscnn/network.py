"""The MLPerf Tiny DS-CNN (platform_ml_models ``dsconv_arm_eembc``) in torch, weights read
from mltk's ``keyword_spotting.h5`` with h5py (Keras is not needed).

Layout as in the .h5's model_config: conv 10x4 stride 2 'same' (TF pads 4/4 rows and 1/1
columns on a 50 x 10 input), then four depthwise-3x3 + pointwise blocks, each conv followed
by BatchNorm (eps 1e-3) and ReLU, a 25 x 5 average pool and a dense layer. Dropout is a no-op
at inference. The module returns the dense layer's output before its softmax (logits), so
the gateway's ``activation: softmax`` gives the .h5's scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import h5py  # type: ignore[import-untyped]
import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["DSCNN", "load_h5"]

_BN_EPS = 1e-3


class DSCNN(nn.Module):
    """Features [batch, 50, 10] (frames x channels, the .h5's input less its last axis)
    -> logits [batch, 12]."""

    def __init__(self, filters: int = 64, blocks: int = 4, classes: int = 12) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(1, filters, (10, 4), stride=2, padding=(4, 1)),
            nn.BatchNorm2d(filters, eps=_BN_EPS),
            nn.ReLU(),
        ]
        for _ in range(blocks):
            layers += [
                nn.Conv2d(filters, filters, 3, padding=1, groups=filters),
                nn.BatchNorm2d(filters, eps=_BN_EPS),
                nn.ReLU(),
                nn.Conv2d(filters, filters, 1),
                nn.BatchNorm2d(filters, eps=_BN_EPS),
                nn.ReLU(),
            ]
        self.body = nn.Sequential(*layers)
        self.dense = nn.Linear(filters, classes)

    def forward(self, features: Tensor) -> Tensor:
        x: Tensor = self.body(features.unsqueeze(1))
        logits: Tensor = self.dense(x.mean(dim=(2, 3)))
        return logits


def _tensor(group: h5py.Group, name: str) -> Tensor:
    return torch.from_numpy(np.asarray(group[name], dtype=np.float32))


def load_h5(path: Path | IO[bytes]) -> DSCNN:
    """A DSCNN in eval mode with the .h5's weights (Keras HWIO kernels -> torch OIHW)."""
    model = DSCNN()
    convs = [m for m in model.body if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.body if isinstance(m, nn.BatchNorm2d)]
    conv_names = ["conv2d"]
    for i in range(4):
        conv_names += [f"depthwise_conv2d{'' if i == 0 else f'_{i}'}", f"conv2d_{i + 1}"]
    with h5py.File(path, "r") as f:
        weights = f["model_weights"]
        with torch.no_grad():
            for conv, name in zip(convs, conv_names, strict=True):
                group = weights[name][name]
                if name.startswith("depthwise"):
                    kernel = _tensor(group, "depthwise_kernel:0").permute(2, 3, 0, 1)
                else:
                    kernel = _tensor(group, "kernel:0").permute(3, 2, 0, 1)
                conv.weight.copy_(kernel)
                assert conv.bias is not None
                conv.bias.copy_(_tensor(group, "bias:0"))
            for i, norm in enumerate(norms):
                name = "batch_normalization" if i == 0 else f"batch_normalization_{i}"
                group = weights[name][name]
                norm.weight.copy_(_tensor(group, "gamma:0"))
                norm.bias.copy_(_tensor(group, "beta:0"))
                assert norm.running_mean is not None and norm.running_var is not None
                norm.running_mean.copy_(_tensor(group, "moving_mean:0"))
                norm.running_var.copy_(_tensor(group, "moving_variance:0"))
            dense = weights["dense"]["dense"]
            model.dense.weight.copy_(_tensor(dense, "kernel:0").T)
            model.dense.bias.copy_(_tensor(dense, "bias:0"))
    return model.eval()
