"""Running a backbone over decoded clips, window by window as the gateway will."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from tqdm import tqdm

from tritone_server.audio.dsp import frame_windows
from tritone_tools.training.backbones import Backbone

__all__ = ["Features", "embed_clips"]


@dataclass(frozen=True)
class Features:
    """One row per analysis window; `clip` says which clip each row came from."""

    x: npt.NDArray[np.float32]
    clip: npt.NDArray[np.int64]


def embed_clips(
    backbone: Backbone,
    waves: Sequence[npt.NDArray[np.float32]],
    *,
    batch_size: int = 32,
    progress: bool = True,
) -> Features:
    """Backbone features of every window of every clip.

    Clips are cut with the gateway's own `frame_windows` (the whole clip when the
    backbone's window is 0). Only windows of equal length share a batch: a whole-clip
    backbone such as speaker-embedding must never see zero padding added for batching.
    """
    windows: list[npt.NDArray[np.float32]] = []
    owners: list[int] = []
    for i, wave in enumerate(waves):
        framed, _ = frame_windows(wave, backbone.window_samples, backbone.hop_samples)
        windows.extend(np.asarray(w, dtype=np.float32) for w in framed)
        owners.extend([i] * len(framed))
    by_length: dict[int, list[int]] = defaultdict(list)
    for j, w in enumerate(windows):
        by_length[w.shape[0]].append(j)
    out = np.zeros((len(windows), backbone.dim), dtype=np.float32)
    bar = tqdm(
        total=len(windows), desc=f"embed ({backbone.name})", unit="win", disable=not progress
    )
    with torch.inference_mode(), bar:
        for _, rows in sorted(by_length.items()):
            for start in range(0, len(rows), batch_size):
                part = rows[start : start + batch_size]
                batch = torch.from_numpy(np.stack([windows[j] for j in part]))
                out[part] = backbone.module(batch).numpy()
                bar.update(len(part))
    return Features(out, np.asarray(owners, dtype=np.int64))
