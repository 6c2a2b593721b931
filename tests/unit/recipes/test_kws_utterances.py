"""Utterance mode against sliding windows (recipes/speech_commands/utterances.py): how a mode
counts commands, the in-process backend against the model repository's configs, and the
README quoting the result file's figures."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from recipes.speech_commands import utterances  # noqa: E402
from recipes.speech_commands.detection import OperatingPoint  # noqa: E402
from recipes.speech_commands.synthesize import SAMPLE_RATE  # noqa: E402

RESULTS = REPO / "recipes" / "speech_commands" / "results" / "utterances.json"


def test_a_mode_counts_command_words_and_the_point_drops_weak_ones() -> None:
    answers = [("yes", 0.9), ("unknown", 0.99), ("too_long", 0.0), ("no", 0.4), ("silence", 1.0)]
    point = OperatingPoint({"yes": 0.8, "no": 0.8})
    assert utterances.commands(answers, "utterance", point) == ["yes", "no"]
    assert utterances.commands(answers, "utterance+point", point) == ["yes"]
    assert utterances.commands([("go", 0.99)], "utterance+point", point) == []  # no threshold


def test_pauses_surround_the_clip_and_are_quiet() -> None:
    clip = np.ones(800, dtype=np.float32)
    padded = utterances.with_pauses(clip, seed=3)
    lead = round(utterances.LEAD_S * SAMPLE_RATE)
    assert padded.shape == (800 + 2 * lead,)
    assert np.array_equal(padded[lead : lead + 800], clip)
    assert 0 < float(np.sqrt(np.mean(padded[:lead] ** 2))) < 3 * utterances.NOISE_RMS


def test_the_in_process_backend_reads_the_configs_the_gateway_reads() -> None:
    from tritone_server.core.models import spec_from_config

    backend = utterances.TorchScriptBackend(REPO / "model_repository")
    gate = spec_from_config(backend.config(utterances.GATE), "1")
    assert gate.task == "voice-activity" and gate.stateful and gate.window_runs > 0


def test_the_readme_quotes_the_result_file() -> None:
    report = json.loads(RESULTS.read_text())["report"]
    readme = (REPO / "README.md").read_text()
    section = readme.split("**For command recognition, use this utterance mode**", 1)[1]
    section = " ".join(section.split("\n\n", 1)[0].split())
    negatives = {m: report[m]["negatives"] for m in utterances.MODES}
    assert f"{negatives['utterance']['per_hour']:.1f} times per hour" in section
    assert f"**{negatives['sliding']['per_hour']:.1f}**" in section
    assert f"({negatives['sliding-alone']['per_hour']:.1f} on the same clips" in section
    isolated = {m: report[m]["recall"]["synthetic isolated"] for m in utterances.MODES}
    said = re.search(r"isolated words as well: ([\d.]+) % against ([\d.]+) %", section)
    assert said is not None
    assert float(said[1]) == pytest.approx(100 * isolated["utterance"]["recall"], abs=0.05)
    assert float(said[2]) == pytest.approx(100 * isolated["sliding"]["recall"], abs=0.05)
    # the recommendation holds: fewer false commands, no less recall of isolated words
    assert negatives["utterance"]["per_hour"] < negatives["sliding"]["per_hour"]
    for source in ("synthetic", "neural"):
        kind = f"{source} isolated"
        assert (
            report["utterance"]["recall"][kind]["hits"] >= report["sliding"]["recall"][kind]["hits"]
        )
