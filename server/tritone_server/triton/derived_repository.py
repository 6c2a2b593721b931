"""The python-backend twin of a model repository.

The pip-installable Triton (nvidia-pytriton wheel) has the python backend but no libtorch
backend, so the committed (production) repository is not served as is: this writes a twin in
which every model keeps its name, tensors, batching and parameters but runs its TorchScript
file through the generic `python_backend/model.py` (on CPU when there is no GPU).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["derive_python_backend_repository", "link_or_copy", "to_python_backend_config"]

_GENERIC_MODEL = Path(__file__).resolve().parent / "python_backend" / "model.py"

_TOKEN = re.compile(
    r"""
    "(?:[^"\\\n]|\\.)*"      # double-quoted string
    | '(?:[^'\\\n]|\\.)*'    # single-quoted string
    | \#[^\n]*               # comment
    """,
    re.VERBOSE,
)


def _blank_strings(text: str) -> str:
    """The text with comments and the insides of string literals replaced by spaces.

    Offsets stay the same, so patterns matched on the blanked text can be applied to the
    original without ever touching a string value (a description that mentions
    `platform: "pytorch_libtorch"` stays as written).
    """

    def blank(match: re.Match[str]) -> str:
        token = match.group(0)
        if token[0] == "#":
            return " " * len(token)
        return token[0] + " " * (len(token) - 2) + token[-1]

    return _TOKEN.sub(blank, text)


def _depths(blank: str) -> list[int]:
    """Nesting depth of each character of blanked text ({ } and [ ] both count)."""
    depth = 0
    out = []
    for char in blank:
        if char in "{[":
            out.append(depth)
            depth += 1
        elif char in "}]":
            depth -= 1
            out.append(depth)
        else:
            out.append(depth)
    return out


def _replace(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


_TORCHSCRIPT = {("platform", '"pytorch_libtorch"'), ("backend", '"pytorch"')}
_ENGINE = re.compile(r"\b(?P<key>platform|backend)\s*:\s*(?P<value>\"[^\"]*\")")
_DEFAULT_FILENAME = re.compile(r"\bdefault_model_filename\s*:\s*\"[^\"]*\"[ \t]*\n?")
_INSTANCE_GROUP = re.compile(r"\binstance_group\s*:?\s*\[")
_KIND_GPU = re.compile(r"\bkind\s*:\s*KIND_GPU\b")
_GPUS = re.compile(r"\bgpus\s*:\s*(?:\[[^\]]*\]|\d+)")


def to_python_backend_config(text: str, *, use_gpu: bool, model: str = "?") -> str:
    """Rewrite a libtorch config.pbtxt for the python backend; everything else is kept.

    `platform: "pytorch_libtorch"` (or `backend: "pytorch"`) becomes `backend: "python"` and
    `default_model_filename` goes (the python backend's file is model.py). Without a GPU,
    instance groups of kind KIND_GPU become KIND_CPU and lose their `gpus` lists.

    Raises:
        ValueError: the config names another platform or backend, or none.
    """
    blank = _blank_strings(text)
    depth = _depths(blank)
    top = [m for m in _ENGINE.finditer(blank) if depth[m.start()] == 0]
    if not top:
        raise ValueError(f"model {model!r}: config.pbtxt names no platform or backend")
    edits: list[tuple[int, int, str]] = []
    for match in top:
        value = text[match.start("value") : match.end("value")]
        if (match.group("key"), value) not in _TORCHSCRIPT:
            engine = text[match.start() : match.end()]
            raise ValueError(
                f"model {model!r}: only TorchScript models can be served locally, not {engine}"
            )
        edits.append((match.start(), match.end(), 'backend: "python"'))
    edits += [
        (m.start(), m.end(), "") for m in _DEFAULT_FILENAME.finditer(blank) if depth[m.start()] == 0
    ]
    if not use_gpu:
        for start, end in _instance_group_spans(blank, depth):
            edits += [
                (start + m.start(), start + m.end(), "kind: KIND_CPU")
                for m in _KIND_GPU.finditer(blank[start:end])
            ]
            edits += [
                (start + m.start(), start + m.end(), "") for m in _GPUS.finditer(blank[start:end])
            ]
    return _replace(text, edits)


def _instance_group_spans(blank: str, depth: list[int]) -> Iterator[tuple[int, int]]:
    for match in _INSTANCE_GROUP.finditer(blank):
        if depth[match.start()] != 0:
            continue
        open_at = match.end() - 1
        close_at = next(
            (i for i in range(open_at + 1, len(blank)) if blank[i] == "]" and depth[i] == 0),
            len(blank),
        )
        yield open_at, close_at + 1


def link_or_copy(src: Path, dest: Path) -> None:
    dest.unlink(missing_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def _link_or_symlink(src: Path, dest: Path) -> None:
    # Model weights can be large: never copy them, symlink across filesystems.
    try:
        os.link(src, dest)
    except OSError:
        dest.symlink_to(src.resolve())


def derive_python_backend_repository(
    src: Path, dest: Path, *, use_gpu: bool, only: Iterable[str] | None = None
) -> list[str]:
    """Write a python-backend twin of the TorchScript repository `src` into `dest`.

    For each model directory of `src` that has a config.pbtxt: the rewritten config (see
    `to_python_backend_config`), the other top-level files (labels.txt, ...) and, for each
    numeric version directory, its TorchScript file linked as `model.pt` next to a copy of
    the generic python-backend `model.py`. A model already in `dest` is replaced.
    With `only`, just those models are written (a model added or rebuilt while Triton runs).

    Returns:
        The model names, sorted.

    Raises:
        ValueError: a model is not TorchScript, or a version has no TorchScript file.
    """
    if not src.is_dir():
        raise ValueError(f"model repository {src} is not a directory")
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    wanted = None if only is None else set(only)
    for model_dir in sorted(p for p in src.iterdir() if (p / "config.pbtxt").is_file()):
        name = model_dir.name
        if wanted is not None and name not in wanted:
            continue
        text = (model_dir / "config.pbtxt").read_text(encoding="utf-8")
        filename = _default_model_filename(text) or "model.pt"
        config = to_python_backend_config(text, use_gpu=use_gpu, model=name)
        versions = sorted(p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())
        if not versions:
            raise ValueError(f"model {name!r}: no version directory in {model_dir}")
        out = dest / name
        if out.exists() or out.is_symlink():
            shutil.rmtree(out)
        out.mkdir()
        (out / "config.pbtxt").write_text(config, encoding="utf-8")
        for item in sorted(model_dir.iterdir()):
            if item.is_file() and item.name != "config.pbtxt":
                link_or_copy(item, out / item.name)
        for version in versions:
            weights = version / filename
            if not weights.is_file():
                raise ValueError(f"model {name!r}: {weights} does not exist")
            (out / version.name).mkdir()
            _link_or_symlink(weights, out / version.name / "model.pt")
            shutil.copyfile(_GENERIC_MODEL, out / version.name / "model.py")
        names.append(name)
    return names


def _default_model_filename(text: str) -> str | None:
    blank = _blank_strings(text)
    depth = _depths(blank)
    for match in re.finditer(r"\bdefault_model_filename\s*:\s*\"", blank):
        if depth[match.start()] == 0:
            end = blank.index('"', match.end())
            return text[match.end() : end]
    return None
