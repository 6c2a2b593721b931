"""How much of a stream a stalled gateway takes in before its caller is held back.

Runs the gateway in-process over the fake Triton of the unit tests (tests/support), stalls
the classifier of one stream, and counts the 64 KiB chunks the caller gets through before
it makes no progress for a second, for several ``stream_queue_chunks``. The difference to
the queue size is what gRPC's flow-control windows and buffers hold. ``--server-option``
adds a gRPC server option to those app.py sets (e.g. ``grpc.http2.bdp_probe=0``, which keeps
gRPC from growing its receive window). Appends a section to benchmarks/results.md.

    PYTHONPATH=tests .venv/bin/python benchmarks/stream_inflight.py --queues 1 4 16 64
    PYTHONPATH=tests .venv/bin/python benchmarks/stream_inflight.py --queues 1 4 16 64 \
        --server-option grpc.http2.bdp_probe=0
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import platform
import sys
from pathlib import Path
from typing import Any

import grpc

from support.inprocess import (
    GATED_WINDOW,
    FakeTriton,
    gateway_settings,
    in_process_gateway,
    stalled_stream,
)
from tritone_protos import audio_classification_pb2_grpc as pb_grpc

RESULTS = Path(__file__).resolve().parent / "results.md"
CHUNK_BYTES = 4 * GATED_WINDOW


async def measure(queues: list[int], chunks: int) -> list[tuple[int, int]]:
    rows = []
    for queue in queues:
        backend = FakeTriton()
        async with (
            in_process_gateway(backend, gateway_settings(stream_queue_chunks=queue)) as gateway,
            grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel,
        ):
            stub = pb_grpc.AudioClassificationStub(channel)  # type: ignore[no-untyped-call]
            async with stalled_stream(stub, backend, chunks=chunks) as seen:
                sent = seen.sent
            assert seen.summary is not None
            assert seen.summary.bytes_received == chunks * CHUNK_BYTES
            rows.append((queue, sent))
            print(f"queue {queue}: {sent} chunks through while stalled", flush=True)
    return rows


def add_server_options(extra: list[tuple[str, int]]) -> None:
    """Make every grpc.aio.server() of this process take ``extra`` options too."""
    original = grpc.aio.server

    def server(*args: Any, options: Any = None, **kwargs: Any) -> Any:
        return original(*args, options=[*(options or []), *extra], **kwargs)

    grpc.aio.server = server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--chunks", type=int, default=400, help="chunks the caller tries")
    parser.add_argument(
        "--server-option", action="append", default=[], metavar="KEY=INT", help="repeatable"
    )
    args = parser.parse_args()
    extra = [(key, int(value)) for key, value in (o.split("=", 1) for o in args.server_option)]
    add_server_options(extra)
    rows = asyncio.run(measure(args.queues, args.chunks))
    command = "PYTHONPATH=tests .venv/bin/python benchmarks/stream_inflight.py --queues "
    command += " ".join(str(q) for q in args.queues)
    command += "".join(f" --server-option {o}" for o in args.server_option)
    lines = [
        "",
        f"### stream_inflight — {datetime.date.today()} — {platform.machine()}, in-process "
        "gateway over the unit tests' fake Triton",
        "",
        f"`{command}` — one stream, classifier stalled, caller sends {args.chunks} chunks of "
        f"{CHUNK_BYTES // 1024} KiB f32le; counted when it has made no progress for 1 s. "
        f"Server options beyond app.py's: {extra or 'none'}.",
        "",
        "| stream_queue_chunks | chunks through | MiB through | beyond the queue |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for queue, sent in rows:
        mib = sent * CHUNK_BYTES / 2**20
        lines.append(f"| {queue} | {sent} | {mib:.1f} | {sent - queue} |")
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
