"""The README's "Detections on a real recording" example prints what the README shows.

The block streams pocketsphinx-testdata's "go forward ten meters" through the real gateway to
`speech-commands`, at the model's calibrated operating point and at 0.35; the ``text`` block
after it is its output, compared line for line (times are window boundaries and the peak is
printed to two decimals, so the lines hold across CPUs).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.gateway import REPO, RunningGateway
from support.recordings import recording_path

pytestmark = pytest.mark.integration

DEFAULT_TARGET = "127.0.0.1:50051"


def example_and_output() -> tuple[str, list[str]]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Detections on a real recording", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    shown = re.findall(r"```text\n(.*?)```", section, flags=re.S)
    assert len(code) == 1 and len(shown) == 1, "the section holds one example and its output"
    return code[0], shown[0].strip().splitlines()


def test_the_real_recording_example_prints_what_the_readme_shows(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    example, shown = example_and_output()
    recording = recording_path("goforward.raw")
    assert str(recording) in example and DEFAULT_TARGET in example
    script = tmp_path / "detections.py"
    script.write_text(example.replace(DEFAULT_TARGET, gateway.target))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == shown
    # What the README says in words: the "go" at the calibrated point; at 0.35 that "go"
    # and a false "yes" later in the sentence.
    found = [tuple(line.split()[:2]) for line in shown if " at " in line]
    assert found == [("model:", "go"), ("0.35:", "go"), ("0.35:", "yes")]
