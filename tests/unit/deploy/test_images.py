"""deploy/docker checked without a container engine.

Each Dockerfile's build stage is replayed here: its COPY lines copy the same files into a
temporary folder standing for the image's root, and its RUN line runs the same install
script there. So what CI checks is what the image would hold. The gateway installed that way
is then started (without Triton) to show it serves health and metrics with no torch.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from support.gateway import REPO, free_port
from tools import lock
from tritone_server.app import LIVENESS_SERVICE

DOCKER = REPO / "deploy" / "docker"


def clean_tree_files() -> list[Path]:
    """What a fresh clone holds (tracked and new files, nothing git ignores): what
    `docker build .` sees in CI, not the generated files `make install` left in this checkout."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [Path(name) for name in listed.split("\0") if name and (REPO / name).is_file()]


def stages(dockerfile: Path) -> list[list[str]]:
    """The instructions of each stage, one string each (continuation lines joined)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    result: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            result.append([])
        result[-1].append(line)
    return result


def replay_build_stage(dockerfile: Path, root: Path) -> None:
    """Run the first stage's COPY and RUN lines with ``root`` standing for ``/``."""

    def inside(path: str) -> Path:
        return root / path.lstrip("/")

    files = clean_tree_files()

    for instruction in stages(dockerfile)[0][1:]:
        keyword, _, rest = instruction.partition(" ")
        if keyword == "COPY":
            *sources, dest = shlex.split(rest)
            assert not any(s.startswith("--") for s in sources), instruction
            for source in sources:
                origin = Path(source)
                target = inside(dest) / origin.name if dest.endswith("/") else inside(dest)
                copied = [f for f in files if f == origin or origin in f.parents]
                assert copied, f"{instruction}: {source} is not in a clean clone"
                for file in copied:
                    to = target / file.relative_to(origin) if file != origin else target
                    to.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(REPO / file, to)
        elif keyword == "RUN":
            argv = [str(inside(a)) if a.startswith("/") else a for a in shlex.split(rest)]
            env = {**os.environ, "PYTHON": sys.executable}
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, f"{instruction} failed:\n{done.stdout}\n{done.stderr}"
        else:
            assert keyword in {"ENV", "ARG", "WORKDIR"}, f"not replayed: {instruction}"


def test_serving_path_does_not_import_torch() -> None:
    probe = (
        "import sys, tritone_server.app\n"
        "print(sorted(m for m in ('torch', 'pytriton', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["gateway.Dockerfile", "models.Dockerfile"])
def test_dockerfiles_pin_their_bases_and_run_as_a_user(name: str) -> None:
    all_stages = stages(DOCKER / name)
    for stage in all_stages:
        base = stage[0].split()[1]
        assert ":" in base and not base.endswith(":latest"), base
    final = all_stages[-1]
    (user,) = [line.split()[1] for line in final if line.startswith("USER ")]
    assert user.split(":")[0] not in {"root", "0"}
    assert not [line for line in final if line.startswith("RUN ") and "apt-get" in line]


def test_gateway_image_is_slim_and_starts_without_torch(tmp_path: Path) -> None:
    dockerfile = DOCKER / "gateway.Dockerfile"
    build, final = stages(dockerfile)
    assert "-slim" in build[0] and "-slim" in final[0]
    assert final[-1] == 'ENTRYPOINT ["python", "-m", "tritone_server"]'
    replay_build_stage(dockerfile, tmp_path)
    python = tmp_path / "opt" / "tritone" / "bin" / "python"
    for heavy in ("torch", "pytriton"):
        missing = subprocess.run([python, "-c", f"import {heavy}"], capture_output=True)
        assert missing.returncode != 0, f"{heavy} is in the gateway image"
    # Exactly the gateway lock (and our wheel): nothing resolved at build time.
    listed = subprocess.run(
        [
            python,
            "-c",
            "from importlib import metadata\n"
            "for d in metadata.distributions(): print(d.metadata['Name'], d.version)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = dict(line.split(" ") for line in listed.splitlines())
    installed = {lock.normalise(name): version for name, version in installed.items()}
    assert installed.pop("tritone")
    assert installed == lock.pins("gateway")

    # The image's command, with a Triton that is not there: it must stay up, alive for the
    # liveness probe, not ready, and serving metrics.
    ports = {name: free_port() for name in ("grpc", "http", "health", "metrics", "triton")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRITONE_")}
    env.update(
        TRITONE_TRITON_URLS=f"127.0.0.1:{ports['triton']}",
        TRITONE_PORT=str(ports["grpc"]),
        TRITONE_HTTP_PORT=str(ports["http"]),
        TRITONE_HEALTH_PORT=str(ports["health"]),
        TRITONE_METRICS_PORT=str(ports["metrics"]),
        TRITONE_DECODE_WORKERS="1",
    )
    process = subprocess.Popen(
        [python, "-m", "tritone_server"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        statuses = _wait_for_liveness(f"127.0.0.1:{ports['health']}", process)
        assert statuses[LIVENESS_SERVICE] == health_pb2.HealthCheckResponse.SERVING
        assert statuses[""] == health_pb2.HealthCheckResponse.NOT_SERVING
        metrics = requests.get(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=10)
        assert metrics.status_code == 200 and "tritone_triton_endpoint_up" in metrics.text
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output.decode(errors="replace")


def _wait_for_liveness(target: str, process: subprocess.Popen[bytes]) -> dict[str, int]:
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, "the gateway exited"
        try:
            with grpc.insecure_channel(target) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                return {
                    name: int(
                        stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=2).status
                    )
                    for name in (LIVENESS_SERVICE, "")
                }
        except grpc.RpcError:
            assert time.monotonic() < deadline, "the health port never answered"
            time.sleep(0.1)  # poll interval of the deadline above


def test_model_image_carries_the_whole_repository(tmp_path: Path) -> None:
    replay_build_stage(DOCKER / "models.Dockerfile", tmp_path)
    models = tmp_path / "models"
    source = REPO / "model_repository"
    shipped = sorted(p.relative_to(models) for p in models.rglob("*") if p.is_file())
    expected = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    assert shipped == expected
    for path in models.rglob("*"):
        assert path.stat().st_mode & 0o004, f"{path} must be readable by the init container"
    final = stages(DOCKER / "models.Dockerfile")[-1]
    assert "COPY --from=build /models /models" in final
