"""README "Deploy to Kubernetes" runs as written up to ``kubectl apply``, offline.

Each command before ``kubectl apply`` runs in a scratch folder; the ``kubectl create`` ones
with ``--dry-run=client -o yaml`` (no cluster here), so the Secrets they would make can be
held against what the rendered manifests mount. Nothing is applied.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from support.k8s import REPO, containers, find, kubectl, render, render_text, workloads
from tritone_server.frontends.tls import ServerTls
from tritone_server.settings import Settings, load_settings
from tritone_server.triton.tls import TritonTls

README = (REPO / "README.md").read_text()
SECTION = README.split("## Deploy to Kubernetes", 1)[1].split("\n## ", 1)[0]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SECTION, flags=re.S)


def run_until_apply(folder: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Run the commands before ``kubectl apply``; the objects ``kubectl create`` would make,
    and what each ``kubectl kustomize`` printed."""
    (block,) = [b for b in blocks("sh") if "kubectl apply" in b]
    lines = block.strip().splitlines()
    apply = next(i for i, line in enumerate(lines) if line.startswith("kubectl apply"))
    assert lines[apply] == "kubectl apply -k deploy/k8s/overlays/gpu"
    (folder / "deploy").symlink_to(REPO / "deploy")
    return run_commands(lines[:apply], folder)


def run_commands(lines: list[str], folder: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Run README commands in ``folder``, ``kubectl create`` as a client-side dry run."""
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(kubectl()).parent), os.environ["PATH"]])}
    created: list[dict[str, Any]] = []
    rendered: dict[str, str] = {}
    for line in lines:
        command = line
        dry = line.startswith("kubectl") and " create " in line
        if dry:
            command += " --dry-run=client -o yaml"
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        if dry:
            created.append(yaml.safe_load(done.stdout))
        elif line.startswith("kubectl kustomize "):
            rendered[line.split()[-1]] = done.stdout
    return created, rendered


def test_the_deploy_commands_run_and_make_what_the_manifests_mount(tmp_path: Path) -> None:
    created, rendered = run_until_apply(tmp_path)
    assert rendered == {"deploy/k8s/overlays/gpu": render_text("overlays/gpu")}
    manifests = render("overlays/gpu")
    namespace = next(o for o in created if o["kind"] == "Namespace")["metadata"]["name"]
    secrets = {o["metadata"]["name"]: o for o in created if o["kind"] == "Secret"}
    for secret in secrets.values():
        assert secret["metadata"]["namespace"] == namespace
    for doc in workloads(manifests):
        assert doc["metadata"]["namespace"] == namespace
        pod = doc["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                assert name in secrets, f"the README does not create Secret {name}"
    # Every file the gateway is told to read is a key of the Secret mounted there.
    pod, gateway = _gateway(manifests)
    settings = _settings(manifests, gateway)
    mounts = {m["mountPath"]: m["name"] for m in gateway["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    files = (settings.tls_cert, settings.tls_key, settings.token_file, settings.admin_token_file)
    for path in files:
        assert path is not None
        secret = secrets[volumes[mounts[str(path.parent)]]["secret"]["secretName"]]
        assert path.name in secret["data"], f"{secret['metadata']['name']} has no {path.name}"

    # The README's certificate serves, and names the headless Service callers dial.
    ServerTls(tmp_path / "gateway.crt", tmp_path / "gateway.key")
    cert = x509.load_pem_x509_certificate((tmp_path / "gateway.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns_names = names.get_values_for_type(x509.DNSName)
    (python_block,) = [b for b in blocks("python") if "load_balancing" in b]
    target = re.search(r'"dns:///([^":]+):(\d+)"', python_block)
    assert target is not None
    host, port = target.group(1), int(target.group(2))
    assert host in dns_names
    service, ns = host.split(".")[:2]
    assert ns == namespace
    headless = find(manifests, "Service", service)
    assert headless["spec"]["clusterIP"] == "None"
    assert port in [p["port"] for p in headless["spec"]["ports"]]

    # The caller example builds a client from the files made above (it connects lazily).
    script = tmp_path / "caller.py"
    script.write_text(python_block + "\nprint(client.target)\n")
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"dns:///{host}:{port}"


def test_the_docker_tags_are_the_ones_the_manifests_pin() -> None:
    (block,) = [b for b in blocks("sh") if "docker build" in b]
    built = set(re.findall(r"docker build .* -t (\S+) \.", block))
    pushed = set(re.findall(r"docker push (\S+)", block))
    assert built == pushed and len(built) == 2
    pods = [d["spec"]["template"]["spec"] for d in workloads(render("overlays/gpu"))]
    images = {c["image"] for pod in pods for c in containers(pod)}
    assert built <= images
    (triton,) = [i for i in images if "tritonserver" in i]
    assert triton in SECTION, "the README names the Triton image the manifests pin"


def test_the_triton_tls_commands_make_the_secret_the_overlay_mounts(tmp_path: Path) -> None:
    """The README's by-hand Triton certificate: the Secret holds every key the overlay
    mounts, and the certificate names what the gateways check it for."""
    (block,) = [b for b in blocks("sh") if "tritone-triton-tls" in b]
    created, _ = run_commands(block.strip().splitlines(), tmp_path)
    (secret,) = [o for o in created if o["kind"] == "Secret"]
    assert secret["metadata"]["name"] == "tritone-triton-tls"
    assert secret["metadata"]["namespace"] == "tritone"
    assert secret["type"] == "kubernetes.io/tls"
    manifests = render("overlays/gpu-triton-tls")
    for name in ("tritone-triton", "tritone-gateway"):
        pod = find(manifests, "Deployment", name)["spec"]["template"]["spec"]
        (volume,) = [
            v
            for v in pod["volumes"]
            if v.get("secret", {}).get("secretName") == "tritone-triton-tls"
        ]
        wanted = {item["key"] for item in volume["secret"].get("items", [])}
        wanted = wanted or {"tls.crt", "tls.key"}  # the whole Secret: Triton's args name these
        assert wanted <= set(secret["data"]), f"{name} mounts keys the Secret lacks"
    gateway_env = _settings(manifests, _gateway(manifests)[1])
    assert gateway_env.triton_tls_ca is not None
    tls = TritonTls.from_file(tmp_path / "triton.crt", gateway_env.triton_tls_server_name)
    cert = x509.load_pem_x509_certificate(tls.root_certificates)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert gateway_env.triton_tls_server_name in names.get_values_for_type(x509.DNSName)


def _gateway(manifests: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The gateway Deployment's pod spec and its gateway container."""
    pod: dict[str, Any] = find(manifests, "Deployment", "tritone-gateway")["spec"]["template"][
        "spec"
    ]
    (gateway,) = [c for c in containers(pod) if c["name"] == "gateway"]
    return pod, gateway


def _settings(manifests: list[dict[str, Any]], gateway: dict[str, Any]) -> Settings:
    """What the gateway container's ConfigMap tells it."""
    name = gateway["envFrom"][0]["configMapRef"]["name"]
    return load_settings([], find(manifests, "ConfigMap", name)["data"])
