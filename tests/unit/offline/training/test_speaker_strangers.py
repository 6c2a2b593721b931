"""Speaker identification against real strangers: the figures the README states hold.

benchmarks/speaker_strangers.py enrols some real people (the Fish Fillets voice actors,
pocketsphinx-testdata readers) with `tritone train` and scores held-out clips and people
nobody enrolled; its figures are in benchmarks/speaker_strangers.json. Here one rotation is
run again from scratch and must reproduce that file's figures (within two clips either way:
another CPU may move a clip across the threshold), and the pooled figures must be within
what the README claims. Needs the Debian packages the benchmark names; without them the
test fails with the install line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from benchmarks import speaker_strangers

REPO = Path(__file__).resolve().parents[4]
RESULTS = REPO / "benchmarks" / "speaker_strangers.json"
ROTATION = 4
SLACK_CLIPS = 2


def _claims() -> tuple[float, float]:
    """The README's stated false-rejection and false-acceptance rates (percent)."""
    readme = (REPO / "README.md").read_text()
    found = re.search(
        r"(\d+(?:\.\d+)?) % of the enrolled people's clips answered `unknown`.*?"
        r"(\d+(?:\.\d+)?) % of the strangers' clips accepted",
        readme,
        flags=re.S,
    )
    assert found, "the README states the speaker-ID figures on real strangers"
    return float(found.group(1)), float(found.group(2))


def test_the_readme_states_the_benchmarks_figures() -> None:
    pooled = json.loads(RESULTS.read_text())["pooled"]
    rejection, acceptance = _claims()
    assert round(100 * pooled["false_rejection_rate"], 1) == rejection
    assert round(100 * pooled["false_acceptance_rate"], 1) == acceptance
    assert pooled["stranger_clips"] >= 200 and pooled["enrolled_test_clips"] >= 400


def test_one_rotation_reproduces_its_figures() -> None:
    recorded: dict[str, Any] = json.loads(RESULTS.read_text())["rotations"][ROTATION]
    again = speaker_strangers.evaluate([ROTATION])["rotations"][0]  # type: ignore[index]
    assert list(again["enrolled"]) == recorded["enrolled"]
    assert list(again["strangers"]) == recorded["strangers"]
    assert again["enrolled_test_clips"] == recorded["enrolled_test_clips"]
    assert again["stranger_clips"] == recorded["stranger_clips"]
    for key in ("false_rejections", "misidentifications", "false_acceptances"):
        assert abs(again[key] - recorded[key]) <= SLACK_CLIPS, (key, again, recorded)
