"""What unauthenticated callers can make the gateway hold: connections x message size.

Starts a real local Triton (the ``tones`` model) and, for each case, a fresh real gateway
with a token file, so that the peak resident set (VmHWM) belongs to that case alone. Every
connection sends one Classify of the given size without a token (``support.
unauthenticated_flood``; each ends UNAUTHENTICATED, or RESOURCE_EXHAUSTED over the limit), or,
for comparison, with a valid token (the message is read whole, then refused as audio it is
not: INVALID_ARGUMENT). A table goes to benchmarks/results.md and the raw figures to
benchmarks/raw/unauthenticated_memory.json (ignored by git), beside the gateway's memory limit
read from the rendered manifests (overlay gpu), under a label (``--label``) so that runs of
different code can sit side by side.

    PYTHONPATH=tests .venv/bin/python benchmarks/unauthenticated_memory.py --label head
    PYTHONPATH=tests .venv/bin/python benchmarks/unauthenticated_memory.py --label head \
        --case 16:67108864:67108864 --case 16:67108864:67108864:token
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import platform
import shlex
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from _load_common import publish_section  # type: ignore[import-not-found]

from support.gateway import REPO, start_gateway
from support.k8s import gateway_memory_limit
from support.unauthenticated_flood import MIB, flood, gateway_memory
from tritone_server.settings import Settings
from tritone_server.triton.local import LocalTriton

RESULTS = Path(__file__).resolve().parent / "raw" / "unauthenticated_memory.json"
DEFAULT_MAX = Settings().max_message_bytes


TOKEN = "bench-token-5e1c"
Case = tuple[int, int, int, bool]


def parse_case(text: str) -> Case:
    """connections:message_bytes:gateway_max_message_bytes[:token]"""
    connections, size, limit, *token = text.split(":")
    if token not in ([], ["token"]):
        raise argparse.ArgumentTypeError(f"{text!r}: the fourth field may only be 'token'")
    return int(connections), int(size), int(limit), bool(token)


async def run_case(triton: str, folder: Path, case: Case) -> Any:
    connections, size, limit, with_token = case
    tokens = folder / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    flags = ("--triton-url", triton, "--token-file", str(tokens), "--default-model", "tones")
    with start_gateway(*flags, "--max-message-bytes", str(limit)) as gateway:
        before = gateway_memory(gateway.process.pid)
        codes = await flood(gateway.target, size, connections, TOKEN if with_token else None)
        after = gateway_memory(gateway.process.pid)
    return {
        "connections": connections,
        "message_bytes": size,
        "max_message_bytes": limit,
        "token": with_token,
        "statuses": dict(Counter(code.name for code in codes)),
        "sent_mib": round(connections * size / MIB, 1),
        "rss_before_mib": round(before.rss_bytes / MIB, 1),
        "peak_rss_mib": round(after.peak_rss_bytes / MIB, 1),
        "peak_rise_mib": round((after.peak_rss_bytes - before.peak_rss_bytes) / MIB, 1),
        "decode_workers_rss_mib": round(after.workers_rss_bytes / MIB, 1),
        "container_peak_mib": round(after.container_peak_bytes / MIB, 1),
    }


async def measure(cases: list[Case]) -> list[Any]:
    with tempfile.TemporaryDirectory() as tmp:
        repository = Path(tmp) / "repository"
        repository.mkdir()
        (repository / "tones").symlink_to(REPO / "model_repository" / "tones")
        rows = []
        async with LocalTriton(repository) as endpoints:
            for case in cases:
                row = await run_case(endpoints.grpc_url, Path(tmp), case)
                print(json.dumps(row), flush=True)
                rows.append(row)
        return rows


def table(rows: list[Any]) -> list[str]:
    lines = [
        "| connections x message (MiB) | gateway limit (MiB) | token | statuses | peak RSS "
        "(rise) MiB | container peak MiB |",
        "| --- | ---: | --- | --- | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['connections']} x {r['message_bytes'] / MIB:g} | "
            f"{r['max_message_bytes'] / MIB:g} | {'valid' if r['token'] else 'none'} | "
            f"{r['statuses']} | {r['peak_rss_mib']} (+{r['peak_rise_mib']}) | "
            f"{r['container_peak_mib']} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="what code ran (e.g. a commit)")
    parser.add_argument(
        "--case",
        action="append",
        type=parse_case,
        help="connections:message_bytes:max_message_bytes[:token] (repeatable; token: the "
        "callers send a valid token); default: 1 and 16 connections of the largest message "
        "the default limit accepts without a token, then 16 of them with one",
    )
    args = parser.parse_args()
    cases = args.case or [
        (1, DEFAULT_MAX, DEFAULT_MAX, False),
        (16, DEFAULT_MAX, DEFAULT_MAX, False),
        (16, DEFAULT_MAX, DEFAULT_MAX, True),
    ]
    rows = asyncio.run(measure(cases))
    limit = gateway_memory_limit("overlays/gpu")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.label] = {
        "command": "PYTHONPATH=tests .venv/bin/python " + shlex.join(sys.argv),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "gateway_memory_limit_mib": limit // MIB,
        "default_max_message_bytes": DEFAULT_MAX,
        "cases": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(REPO)} under {args.label!r}")
    publish_section(
        "unauthenticated_memory",
        f"label {args.label!r}; gateway peak RSS (VmHWM) and its decode workers, against the "
        f"gateway container's {limit // MIB} MiB limit (overlay gpu)",
        table(rows),
        missed=None,
        write=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
