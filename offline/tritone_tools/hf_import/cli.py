"""``tritone import-hf PATH --name NAME``: convert a local checkpoint into a model directory.

    tritone import-hf ./my-wav2vec2-checkpoint --name keywords \\
        [--repository DIR] [--target HOST:PORT] [--max-batch-size N] [--overwrite]
        [--tolerance 1e-4]

Writes ``DIR/NAME`` (config.pbtxt, labels.txt, 1/model.pt, README.md). With ``--target`` it
then asks the running gateway there to load the model, so it serves without a restart (the
gateway's model repository must be DIR). The exported model's scores are compared with
``transformers.pipeline("audio-classification")`` on a few seconds of audio at 8, 16 and
44.1 kHz; a difference above ``--tolerance`` fails the import and writes nothing. Exit
status 0 on success, 1 on failure (the message says what was measured), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import tritone_tools.hf_import  # noqa: F401 - hides a stray `triton` folder first
from tritone_tools.hf_import.checkpoint import SUPPORTED_ARCHITECTURES, ImportHFError
from tritone_tools.hf_import.export import ExportResult, export_checkpoint
from tritone_tools.hf_import.parity import DEFAULT_TOLERANCE
from tritone_tools.hf_import.repository_files import DEFAULT_MAX_BATCH_SIZE

__all__ = ["default_repository", "main"]

_REPO_ROOT = Path(__file__).resolve().parents[3]


def default_repository() -> Path:
    """$TRITONE_MODEL_REPOSITORY, else the checkout's model_repository/."""
    configured = os.environ.get("TRITONE_MODEL_REPOSITORY")
    return Path(configured) if configured else _REPO_ROOT / "model_repository"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tritone import-hf",
        description=(
            "Convert a local Hugging Face audio-classification checkpoint into a Triton "
            "model directory (TorchScript taking the raw waveform, feature extraction "
            f"inside). Supported: {', '.join(SUPPORTED_ARCHITECTURES)}."
        ),
    )
    parser.add_argument(
        "path",
        type=Path,
        help="checkpoint directory (config.json, weights, preprocessor_config.json)",
    )
    parser.add_argument("--name", required=True, help="model name (the directory written)")
    parser.add_argument(
        "--repository",
        type=Path,
        default=None,
        help="model repository to write into (default: $TRITONE_MODEL_REPOSITORY or the "
        "checkout's model_repository/)",
    )
    parser.add_argument(
        "--target",
        default=None,
        help="host:port of a running gateway on that repository: load the model there",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("TRITONE_TOKEN") or None,
        help="bearer token for --target (default: $TRITONE_TOKEN)",
    )
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=DEFAULT_MAX_BATCH_SIZE,
        help="Triton max_batch_size (default: %(default)s)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing model directory"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="largest |score difference| from the transformers pipeline accepted (scores "
        "after the checkpoint's softmax or sigmoid; default: %(default)g)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


async def _load(target: str, token: str | None, name: str) -> str:
    import tritone

    async with tritone.AsyncClient(target, token=token, timeout=300.0) as client:
        info = await client.load_model(name)
    return f"loaded {info.name} into the gateway at {target} ({len(info.labels)} labels)"


def _summary(result: ExportResult) -> str:
    parity = ", ".join(f"{s:g} s at {r} Hz {d:.1e}" for (s, r), d in result.parity.items())
    return (
        f"wrote {result.directory} ({result.architecture}, {len(result.labels)} labels, "
        f"activation {result.activation}, min_samples {result.min_samples}) in "
        f"{result.seconds:.1f} s\n"
        f"max |score difference| vs the transformers pipeline (tolerance "
        f"{result.tolerance:g}): {parity}; "
        f"trace vs eager logits: {result.trace_error:.1e}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.max_batch_size < 1:
        parser.error("--max-batch-size must be at least 1")
    if not args.tolerance >= 0.0:
        parser.error("--tolerance must be a number >= 0")
    repository: Path = args.repository or default_repository()
    try:
        result = export_checkpoint(
            args.path,
            args.name,
            repository,
            max_batch_size=args.max_batch_size,
            overwrite=args.overwrite,
            progress=not args.quiet,
            tolerance=args.tolerance,
        )
    except ImportHFError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(_summary(result))
    if args.target:
        from tritone.errors import TritoneError

        try:
            print(asyncio.run(_load(args.target, args.token, args.name)))
        except TritoneError as exc:
            print(
                f"error: wrote {result.directory}, but the gateway at {args.target} did not "
                f"load it: {exc.code.name}: {exc.details}",
                file=sys.stderr,
            )
            return 1
    return 0
