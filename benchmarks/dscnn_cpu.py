"""CPU time per one-second window of speech-commands-dscnn: its TorchScript front end
(TFLM's fixed-point frontend in int64 torch), its network, and the whole served file,
beside mltk's compiled C front end for scale.

    python benchmarks/dscnn_cpu.py [--out benchmarks/raw/dscnn_cpu.json] [--threads 1]

Each figure is the median over repeats of process CPU time (time.process_time) divided by
the windows in the call, at batch 1 and batch 32, after warm-up. Timings belong here, never
in tests. Appends a table to benchmarks/results.md; the JSON goes to ``--out`` (ignored by
git).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from _load_common import append_results  # type: ignore[import-not-found]  # noqa: E402

from recipes.speech_commands.dscnn import jit, reference  # noqa: E402
from recipes.speech_commands.dscnn.frontend import MicroFrontend  # noqa: E402
from recipes.speech_commands.dscnn.network import load_h5  # noqa: E402
from recipes.speech_commands.dscnn.settings import KWS_FRONTEND  # noqa: E402

T = TypeVar("T")
MODEL = REPO / "model_repository" / "speech-commands-dscnn" / "1" / "model.pt"


def per_window_us(run: Callable[[T], object], arg: T, windows: int, repeats: int) -> float:
    for _ in range(3):
        run(arg)
    samples = []
    for _ in range(repeats):
        start = time.process_time()
        run(arg)
        samples.append((time.process_time() - start) / windows * 1e6)
    return round(statistics.median(samples), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "raw" / "dscnn_cpu.json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    frontend = jit.script(MicroFrontend(KWS_FRONTEND))
    network = jit.script(load_h5(io.BytesIO(reference.h5_bytes())))
    served = jit.load(MODEL).eval()
    figures: dict[str, dict[str, float]] = {}
    for batch in (1, 32):
        wave = torch.from_numpy((rng.standard_normal((batch, 16000)) * 0.1).astype(np.float32))
        pcm = torch.from_numpy(rng.integers(-3000, 3000, (batch, 16320)))
        feats = torch.from_numpy((rng.random((batch, 50, 10)) * 200).astype(np.float32))
        with torch.inference_mode():
            figures[f"batch_{batch}"] = {
                "frontend_us_per_window": per_window_us(frontend, pcm, batch, args.repeats),
                "network_us_per_window": per_window_us(network, feats, batch, args.repeats),
                "served_model_us_per_window": per_window_us(served, wave, batch, args.repeats),
            }
    clip = rng.integers(-3000, 3000, 16320).astype(np.int16)
    figures["mltk_compiled_frontend"] = {
        # includes loading the extension and building the generator, once per call
        "us_per_window": per_window_us(
            lambda x: reference.compiled_frontend(KWS_FRONTEND, x), clip, 1, args.repeats
        )
    }
    result = {
        "command": f"python benchmarks/dscnn_cpu.py --threads {args.threads} "
        f"--repeats {args.repeats}",
        "torch": torch.__version__,
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "figures": figures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    append_results(results_section(result))


def results_section(result: dict[str, object]) -> list[str]:
    """The results.md section: CPU µs per 1 s window, per part and batch."""
    figures = result["figures"]
    assert isinstance(figures, dict)
    lines = [
        f"\n### dscnn_cpu — {time.strftime('%Y-%m-%d %H:%M')} — {result['machine']}, "
        f"{result['cpu_count']} cores (shared), torch {result['torch']}, "
        f"{result['threads']} thread(s), no Triton\n",
        f"`{result['command']}` — process CPU µs per 1 s window (median over repeats)\n",
        "| batch | TorchScript front end | network | served model.pt |",
        "| --- | ---: | ---: | ---: |",
    ]
    for batch in (1, 32):
        row = figures[f"batch_{batch}"]
        lines.append(
            f"| {batch} | {row['frontend_us_per_window']} | {row['network_us_per_window']} "
            f"| {row['served_model_us_per_window']} |"
        )
    compiled = figures["mltk_compiled_frontend"]["us_per_window"]
    lines += ["", f"mltk's compiled C front end, for scale: {compiled} µs per window.", ""]
    return lines


if __name__ == "__main__":
    main()
