"""Compare the torch port of openwakeword's backbone with openwakeword's own ONNX pipeline.

The port itself (torch modules built from the Apache-2.0 ONNX files in the openwakeword
0.4.0 wheel) lives in the installed package, `tritone_tools.training.openwakeword`, because
``tritone train`` runs it; this recipe module only checks it against onnxruntime, at build
time (build.py) and in the unit tests. See that module's docstring for the one deliberate
difference (the 80 dB floor is taken per clip, not over the batch).

Usage: python -m recipes.speech_commands.port_openwakeword [--wav FILE ...]
"""

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from tritone_tools.training.openwakeword import (
    EMBEDDING_FILE,
    INT16_SCALE,
    MEL_FILE,
    SAMPLE_RATE,
    WINDOW_FRAMES,
    WINDOW_STRIDE,
    Backbone,
    load_backbone,
    openwakeword_models_dir,
)

__all__ = ["max_abs_difference", "reference_embeddings"]


def reference_embeddings(
    waveform: npt.NDArray[np.float32], models_dir: Path, window_stride: int = WINDOW_STRIDE
) -> npt.NDArray[np.float32]:
    """openwakeword's own pipeline in onnxruntime for ONE clip in [-1, 1]: [W, 96]
    (windows every ``window_stride`` mel frames; openwakeword itself uses 8)."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    mel = ort.InferenceSession(str(models_dir / MEL_FILE), options, providers=providers)
    emb = ort.InferenceSession(str(models_dir / EMBEDDING_FILE), options, providers=providers)
    x = (waveform.astype(np.float32) * np.float32(INT16_SCALE))[None, :]
    spec = np.squeeze(mel.run(None, {"input": x})[0]) / 10.0 + 2.0
    starts = range(0, spec.shape[0] - WINDOW_FRAMES + 1, window_stride)
    batch = np.stack([spec[i : i + WINDOW_FRAMES] for i in starts])[..., None].astype(np.float32)
    out: npt.NDArray[np.float32] = emb.run(None, {"input_1": batch})[0].reshape(len(starts), -1)
    return out


def max_abs_difference(
    backbone: Backbone, waveform: npt.NDArray[np.float32], models_dir: Path
) -> float:
    """Largest |torch - onnxruntime| over the embeddings of one clip (at the backbone's
    window stride)."""
    with torch.no_grad():
        ours = backbone(torch.from_numpy(waveform[None, :].astype(np.float32)))[0].numpy()
    ref = reference_embeddings(waveform, models_dir, backbone.window_stride)
    return float(np.abs(ours - ref).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wav", nargs="*", default=[], help="real audio files to compare on too")
    args = parser.parse_args()
    folder = openwakeword_models_dir()
    backbone = load_backbone(folder)
    rng = np.random.default_rng(0)
    clips: dict[str, npt.NDArray[np.float32]] = {
        "uniform noise 1 s": rng.uniform(-0.5, 0.5, 16000).astype(np.float32),
        "gaussian noise 2 s": (0.05 * rng.standard_normal(32000)).astype(np.float32),
        "chirp 1 s": (
            0.3 * np.sin(2 * np.pi * np.cumsum(np.linspace(100, 6000, 16000)) / SAMPLE_RATE)
        ).astype(np.float32),
    }
    if args.wav:
        import soundfile

        for name in args.wav:
            data, rate = soundfile.read(name, dtype="float32", always_2d=True)
            if rate != SAMPLE_RATE:
                raise SystemExit(f"{name}: {rate} Hz, need {SAMPLE_RATE}")
            clips[name] = data.mean(axis=1)
    for name, clip in clips.items():
        print(
            f"{name}: max |torch - onnxruntime| = {max_abs_difference(backbone, clip, folder):.2e}"
        )


if __name__ == "__main__":
    main()
