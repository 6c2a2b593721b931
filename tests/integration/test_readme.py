"""The README's examples run as written against the real gateway."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from support.gateway import REPO, RunningGateway
from support.recordings import recording_path
from support.tones import encode, tone

README = (REPO / "README.md").read_text()
DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_HTTP = "http://127.0.0.1:8080"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_sdk_example_runs(gateway: RunningGateway, tmp_path: Path) -> None:
    example = next(b for b in blocks("python") if "AsyncClient" in b)
    assert DEFAULT_TARGET in example
    script = tmp_path / "example.py"
    script.write_text(example.replace(DEFAULT_TARGET, gateway.target))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "tone_1000 1.0"
    assert "StreamSummary" in lines[-1]


def test_the_http_example_runs(gateway: RunningGateway, tmp_path: Path) -> None:
    example = next(b for b in blocks("python") if "requests.post" in b)
    assert DEFAULT_HTTP in example
    (tmp_path / "some.wav").write_bytes(encode(tone(707, 1.0, 16000), 16000, "wav"))
    script = tmp_path / "http_example.py"
    script.write_text(example.replace(DEFAULT_HTTP, gateway.http_url))
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[{'label': 'tone_707', 'score':")


def test_the_cli_examples_run(gateway: RunningGateway, tmp_path: Path) -> None:
    shell = next(b for b in blocks("sh") if "tritone models" in b)
    (tmp_path / "some.wav").write_bytes(encode(tone(500, 1.0, 16000), 16000, "wav"))
    (tmp_path / "other.flac").write_bytes(encode(tone(2000, 1.0, 44100), 44100, "flac"))
    # Real speech: pocketsphinx-testdata's "go forward ten meters" (16 kHz s16le, headerless).
    speech = np.fromfile(recording_path("goforward.raw"), dtype="<i2").astype(np.float32)
    (tmp_path / "speech.wav").write_bytes(encode(speech / 32768.0, 16000, "wav"))
    tritone_bin = Path(sys.executable).parent / "tritone"
    outputs = []
    for line in shell.strip().splitlines():
        argv = line.split()
        assert argv[0] == ".venv/bin/tritone"
        done = subprocess.run(
            [str(tritone_bin), *argv[1:], "--target", gateway.target],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            check=False,
        )
        assert done.returncode == 0, f"{line}: {done.stderr}"
        outputs.append(done.stdout)
    assert "tones" in outputs[0]
    score, label = outputs[1].splitlines()[1].split()  # the default model: voice-activity
    assert "voice-activity" in outputs[1] and label == "speech" and float(score) > 0.5
    assert "tone_500" in outputs[2] and "tone_2000" in outputs[2]
    assert "tone_500" in outputs[3]
    assert "summary speech-commands" in outputs[4]
