"""Verify a speaker with `Embed` vectors, no Enroll and no retraining: cosine + threshold.

    python examples/verify_speaker.py ENROLMENT_CLIP_OR_FOLDER... --clip CLIP --model NAME
        [--repository DIR] [--target HOST:PORT]

A model trained by ``tritone train --backbone speaker-embedding`` answers ``unknown`` when a
clip's embedding is below a calibrated cosine threshold for every enrolled speaker's
centroid (the normalised mean of that speaker's unit embeddings). The threshold is in the
model's config.pbtxt as the parameter ``unknown_threshold``; a service can apply the same
rule to anyone it holds a few clips of:

1. embed each enrolment clip with the ``speaker-embedding`` model (`AsyncClient.embed`);
2. centroid = normalised mean of those unit vectors;
3. embed the clip to check; accept when cosine(clip, centroid) >= the threshold.

Prints ``accepted`` or ``rejected`` with the cosine and the threshold.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from pathlib import Path

import numpy as np

import tritone


def read_threshold(config: Path) -> float:
    """The ``unknown_threshold`` parameter of a trained model's config.pbtxt."""
    found = re.search(
        r'"unknown_threshold"\s*value:?\s*\{\s*string_value:\s*"([^"]+)"', config.read_text()
    )
    if found is None:
        raise SystemExit(f"{config} has no unknown_threshold: train with --unknown-threshold auto")
    return float(found.group(1))


async def verify(target: str, enrolment: list[Path], clip: Path) -> float:
    """cosine(clip, centroid of the enrolment clips), all embedded by speaker-embedding."""
    async with tritone.AsyncClient(target) as client:
        vectors = [
            (await client.embed(path, model="speaker-embedding")).as_array() for path in enrolment
        ]
        probe = (await client.embed(clip, model="speaker-embedding")).as_array()
    units = np.stack([v / np.linalg.norm(v) for v in vectors])
    centroid = units.mean(axis=0)
    centroid /= np.linalg.norm(centroid)
    return float(probe @ centroid / np.linalg.norm(probe))


def main() -> None:
    parser = argparse.ArgumentParser(description="Verify a speaker with Embed vectors.")
    parser.add_argument(
        "enrolment", nargs="+", type=Path, help="clips (or folders of clips) of the speaker"
    )
    parser.add_argument("--clip", required=True, type=Path, help="the clip to verify")
    parser.add_argument("--model", required=True, help="a model tritone train wrote")
    parser.add_argument(
        "--repository",
        type=Path,
        default=Path(os.environ.get("TRITONE_MODEL_REPOSITORY", "model_repository")),
    )
    parser.add_argument("--target", default=os.environ.get("TRITONE_TARGET", "127.0.0.1:50051"))
    args = parser.parse_args()
    threshold = read_threshold(args.repository / args.model / "config.pbtxt")
    enrolment = [
        clip
        for path in args.enrolment
        for clip in (sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path])
    ]
    cosine = asyncio.run(verify(args.target, enrolment, args.clip))
    verdict = "accepted" if cosine >= threshold else "rejected"
    print(f"{verdict}: cosine {cosine:.4f}, threshold {threshold:.4f}")


if __name__ == "__main__":
    main()
