"""locks/: what make install, CI and the gateway image install, pinned and hashed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from support.gateway import REPO
from tools import lock

pins = lock.pins


def test_the_committed_locks_match_pyproject() -> None:
    assert lock.check() == 0, "run `make lock`: the locks are older than pyproject.toml"


def test_every_installed_package_is_the_one_the_dev_lock_pins() -> None:
    """`make install` installs the lock and nothing else: no version drifts in by a range."""
    locked = pins("dev")
    installed = {
        lock.normalise(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        if lock.normalise(d.metadata["Name"]) != "tritone"
    }
    assert {n: v for n, v in installed.items() if locked.get(n) != v} == {}
    assert set(locked) - set(installed) == set(), "the lock pins packages the venv lacks"


@pytest.mark.parametrize("name", [spec.name for spec in lock.SPECS])
def test_every_pin_has_hashes(name: str) -> None:
    text = lock.lock_path(name).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 3)[3])
    for entry in entries:
        if lock.PIN.match(entry):
            assert "--hash=sha256:" in entry, f"locks/{name}.txt: {entry.splitlines()[0]}"


def test_gateway_lock_is_torch_free_and_keeps_the_dev_versions() -> None:
    gateway, dev = pins("gateway"), pins("dev")
    assert {"torch", "nvidia-pytriton", "transformers"} & set(gateway) == set()
    assert {"grpcio", "tritonclient", "aiohttp", "soundfile"} <= set(gateway)
    assert {n: v for n, v in gateway.items() if dev.get(n) != v} == {}


def test_dev_lock_has_the_cpu_torch_and_the_no_deps_wheels() -> None:
    dev = pins("dev")
    assert dev["torch"] == "2.13.0+cpu"
    assert {"resemblyzer", "openwakeword", "uv", "setuptools", "grpcio-tools"} <= set(dev)
    # Installed without their dependencies: webrtcvad (a source build) must not be pinned.
    assert "webrtcvad" not in dev and "webrtcvad-wheels" in dev


def test_extras_naming_our_own_extras_are_expanded() -> None:
    pyproject = lock._pyproject()
    (spec,) = [s for s in lock.SPECS if s.name == "dev"]
    lines = lock.requirements(spec, pyproject)
    assert not [line for line in lines if line.startswith("tritone")]
    assert "nvidia-pytriton==0.7.0" in lines  # from [server], reached through [train]
    assert any(line.startswith("tritonclient") for line in lines)  # [gateway] through [server]


def test_a_changed_dependency_without_make_lock_stops_with_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    shutil.copy2(REPO / "tools" / "lock.py", tmp_path / "tools" / "lock.py")
    shutil.copytree(REPO / "locks", tmp_path / "locks")
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"soxr>=0.5",' in pyproject
    (tmp_path / "pyproject.toml").write_text(pyproject.replace('"soxr>=0.5",', '"soxr>=0.6",'))

    done = subprocess.run(
        [sys.executable, str(tmp_path / "tools" / "lock.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "locks/dev.txt" in message and "locks/gateway.txt" in message
    assert "locks/build.txt" not in message  # its inputs did not change
    assert "`make lock`" in message
