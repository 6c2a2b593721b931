"""Write a tiny, randomly initialised Hugging Face audio-classification checkpoint.

A stand-in for a checkpoint you already have on disk (nothing is downloaded):

    python examples/make_tiny_checkpoint.py demo/tiny-wav2vec2

--architecture: Wav2Vec2ForSequenceClassification (the default), HubertForSequenceClassification,
WavLMForSequenceClassification, WhisperForAudioClassification, ASTForAudioClassification.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tritone_tools.hf_import.tiny import write_tiny_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a tiny random HF checkpoint.")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--architecture", default="Wav2Vec2ForSequenceClassification")
    args = parser.parse_args()
    print(write_tiny_checkpoint(args.architecture, args.directory))


if __name__ == "__main__":
    main()
