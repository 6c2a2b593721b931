"""Writing Triton model configs in the form the gateway reads (see models.py).

Recipes, ``tritone train`` and ``tritone import-hf`` all write model directories through
this module, so every committed or generated config has the same production shape:
TorchScript (``pytorch_libtorch``), GPU instance group, dynamic batching, batch-first FP32
tensors, and Tritone's parameters (``labels`` mirrors labels.txt, because the gateway reads
configs from Triton over the network and never sees the file).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TensorConfig:
    name: str
    dims: tuple[int, ...]
    """Without the batch dimension; -1 for a variable length."""
    label_file: bool = False
    """Whether Triton's label_filename (labels.txt) belongs to this output."""

    def render(self) -> str:
        dims = ", ".join(str(d) for d in self.dims)
        labels = ' label_filename: "labels.txt"' if self.label_file else ""
        return f'  {{ name: "{self.name}" data_type: TYPE_FP32 dims: [ {dims} ]{labels} }}'


def pbtxt_string(text: str) -> str:
    """A protobuf text-format string literal (ASCII only, so no \\u escapes are needed)."""
    if not text.isascii():
        raise ValueError(f"config strings must be ASCII: {text[:40]!r}")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def render_config(
    name: str,
    *,
    inputs: Sequence[TensorConfig],
    outputs: Sequence[TensorConfig],
    parameters: Mapping[str, str],
    labels: Sequence[str] | None = None,
    max_batch_size: int = 64,
    max_queue_delay_us: int = 1000,
) -> str:
    """The config.pbtxt text; ``labels`` go into the ``labels`` parameter as JSON."""
    params = dict(parameters)
    if labels is not None:
        params["labels"] = json.dumps(list(labels))
    lines = [
        f"name: {pbtxt_string(name)}",
        'platform: "pytorch_libtorch"',
        f"max_batch_size: {max_batch_size}",
        "input [",
        ",\n".join(t.render() for t in inputs),
        "]",
        "output [",
        ",\n".join(t.render() for t in outputs),
        "]",
        "instance_group [ { kind: KIND_GPU count: 1 } ]",
        f"dynamic_batching {{ max_queue_delay_microseconds: {max_queue_delay_us} }}",
    ]
    for key, value in params.items():
        lines.append(
            f"parameters {{ key: {pbtxt_string(key)} value: {{ string_value: "
            f"{pbtxt_string(value)} }} }}"
        )
    return "\n".join(lines) + "\n"
