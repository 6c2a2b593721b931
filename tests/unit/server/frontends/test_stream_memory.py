"""What one stalled stream can make the gateway hold: its queue, plus gRPC's windows.

The gateway turns off HTTP/2 BDP probing, which otherwise grows a stream's receive window to
megabytes while its classifier is stalled (benchmarks/stream_inflight.py: ~6 MiB per stream
with probing, ~0.2-0.4 MiB without). max_streams times that is the pod's worst case, so the
figure has to stay near the queue's own budget.
"""

from __future__ import annotations

from support.inprocess import GATED_WINDOW, FakeTriton, stalled_stream
from tritone_protos import audio_classification_pb2_grpc as pb_grpc
from tritone_server.app import Gateway

CHUNK_BYTES = 4 * GATED_WINDOW  # float32 samples
WINDOW_ALLOWANCE = 1024 * 1024  # gRPC's stream and connection windows, a message in transit


async def test_a_stalled_stream_holds_little_beyond_its_queue(
    stub: pb_grpc.AudioClassificationStub, fake_triton: FakeTriton, gateway: Gateway
) -> None:
    queue_budget = gateway.settings.stream_queue_chunks * CHUNK_BYTES
    async with stalled_stream(stub, fake_triton, chunks=400) as seen:
        assert not seen.finished_while_stalled
        held = seen.sent * CHUNK_BYTES
        assert held <= queue_budget + WINDOW_ALLOWANCE, (
            f"{held} bytes taken from the caller while stalled, queue budget {queue_budget}"
        )
    assert seen.summary is not None and seen.summary.windows == 400
