"""The README's own-data walk-through runs as written (train, evaluate, speaker ID, import-hf).

Each shell line of the section is run as it stands, from a folder laid out like the
repository root, against a real gateway whose model repository is a scratch copy
(TRITONE_MODEL_REPOSITORY), so the checkout's model_repository/ is left alone.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from support.gateway import REPO, start_gateway

DEFAULT_TARGET = "127.0.0.1:50051"


def walkthrough_lines() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Your own data", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.strip().splitlines()]


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    lines = walkthrough_lines()
    assert any("tritone train" in x and "speaker-embedding" in x for x in lines)
    assert any("tritone evaluate" in x for x in lines)
    assert any("tritone import-hf" in x for x in lines)
    repository = tmp_path / "models"
    repository.mkdir()
    for name in ("speaker-embedding", "speech-commands"):
        shutil.copytree(REPO / "model_repository" / name, repository / name)
    root = tmp_path / "checkout"
    root.mkdir()
    (root / ".venv").symlink_to(Path(sys.prefix))
    (root / "examples").symlink_to(REPO / "examples")
    with start_gateway("--model-repository", str(repository)) as gateway:
        env = dict(os.environ)
        env["TRITONE_MODEL_REPOSITORY"] = str(repository)
        env["TRITONE_TARGET"] = gateway.target
        outputs = []
        for line in lines:
            argv = shlex.split(line.replace(DEFAULT_TARGET, gateway.target))
            if argv[0].endswith("tritone") and argv[1] in {"train", "import-hf", "evaluate"}:
                argv.append("--quiet")  # progress bars are for people
            done = subprocess.run(
                argv, cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False
            )
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}\n{gateway.log()}"
            outputs.append(done.stdout)
    assert {"demo-speakers", "demo-words", "demo-wav2vec2"} <= {
        p.name for p in repository.iterdir()
    }
    report = json.loads((root / "demo" / "report.json").read_text())
    assert report["accuracy"] >= 0.8
    assert (root / "demo" / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    classified = [o for line, o in zip(lines, outputs, strict=True) if "demo-speakers" in line]
    assert "reader" in classified[1]
    verified = [o for line, o in zip(lines, outputs, strict=True) if "verify_speaker" in line]
    assert verified and verified[0].startswith("accepted: cosine"), verified
