# mypy: ignore-errors
"""Generic Triton python-backend model that runs a TorchScript file with torch.

tritone_server.triton.derived_repository copies this file next to each model's `model.pt`
in the derived repository that a local Triton (tritone_server.triton.local) serves with the
pip-installable Triton, which has no libtorch backend. It runs inside Triton's python-backend
stub, so it can import triton_python_backend_utils and is never imported by the gateway
itself; the stub runs the gateway's own environment (the `python3` first on PATH), so it
imports tritone_server too.

- The TorchScript file is `<model_repository>/<version>/model.pt`.
- Config inputs are passed to `forward` by argument name when every input name is a
  `forward` argument, otherwise positionally in config order.
- `forward` may return one tensor or a tuple/list of tensors; they fill the config outputs
  in order.
- Requests that arrive together (dynamic batching) run as one batch when their inputs
  agree in everything but the batch dimension; otherwise, or if the batch fails, each
  request runs on its own, so one bad request fails alone.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
import triton_python_backend_utils as pb_utils

from tritone_server.triton.torchscript import quiet_torchscript


class TritonPythonModel:
    def initialize(self, args):
        self.model_config = json.loads(args["model_config"])
        self.model_name = self.model_config.get("name", args.get("model_name", "?"))
        self.batching = int(self.model_config.get("max_batch_size", 0)) > 0
        self.input_names = [item["name"] for item in self.model_config.get("input", [])]
        self.outputs = [
            (item["name"], pb_utils.triton_string_to_numpy(item["data_type"]))
            for item in self.model_config.get("output", [])
        ]
        self.device = _pick_device(args)
        path = os.path.join(args["model_repository"], args["model_version"], "model.pt")
        with quiet_torchscript():
            self.module = torch.jit.load(path, map_location=self.device)
        self.module.eval()
        self.by_name = self._inputs_match_forward_arguments()
        pb_utils.Logger.log_info(
            f"tritone: loaded {path} on {self.device}; inputs "
            f"{'by name' if self.by_name else 'by position'}: {self.input_names}"
        )

    def _inputs_match_forward_arguments(self):
        try:
            arguments = [arg.name for arg in self.module.forward.schema.arguments]
        except (AttributeError, RuntimeError):
            return False
        names = [name for name in arguments if name != "self"]
        return bool(self.input_names) and all(name in names for name in self.input_names)

    def execute(self, requests):
        responses = [None] * len(requests)
        inputs = []
        for index, request in enumerate(requests):
            try:
                inputs.append((index, self._read_inputs(request)))
            except Exception as exc:  # reported per request, never raised to Triton
                responses[index] = _error_response(f"{self.model_name}: {exc}")

        if self.batching and len(inputs) > 1 and _stackable([arrays for _, arrays in inputs]):
            try:
                batched = [
                    np.concatenate([arrays[i] for _, arrays in inputs], axis=0)
                    for i in range(len(self.input_names))
                ]
                outputs = self._run(batched)
                start = 0
                for index, arrays in inputs:
                    stop = start + arrays[0].shape[0]
                    responses[index] = _response([(n, a[start:stop]) for n, a in outputs])
                    start = stop
                return responses
            except Exception:
                pass  # fall through: run each request on its own to find the bad one

        for index, arrays in inputs:
            try:
                responses[index] = _response(self._run(arrays))
            except Exception as exc:
                responses[index] = _error_response(f"{self.model_name}: {exc}")
        return responses

    def _read_inputs(self, request):
        arrays = []
        for name in self.input_names:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise ValueError(f"missing input {name!r}")
            array = tensor.as_numpy()
            if array.dtype == np.object_:
                raise ValueError(f"input {name!r}: string tensors are not supported")
            arrays.append(array)
        return arrays

    def _run(self, arrays):
        # np.array copies: the stub's arrays live in shared memory and are read-only.
        tensors = [torch.from_numpy(np.array(a, copy=True)).to(self.device) for a in arrays]
        with torch.inference_mode():
            if self.by_name:
                result = self.module(**dict(zip(self.input_names, tensors, strict=True)))
            else:
                result = self.module(*tensors)
        if isinstance(result, torch.Tensor):
            result = (result,)
        elif not isinstance(result, (tuple, list)):
            raise TypeError(f"forward returned {type(result).__name__}, expected tensors")
        if len(result) != len(self.outputs):
            raise ValueError(
                f"forward returned {len(result)} tensors, config declares {len(self.outputs)}"
            )
        outputs = []
        for (name, dtype), tensor in zip(self.outputs, result, strict=True):
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"output {name!r} is {type(tensor).__name__}, not a tensor")
            outputs.append((name, tensor.detach().cpu().numpy().astype(dtype, copy=False)))
        if self.batching:
            rows = arrays[0].shape[0]
            for name, array in outputs:
                if array.ndim == 0 or array.shape[0] != rows:
                    raise ValueError(
                        f"output {name!r} has shape {list(array.shape)}, "
                        f"expected batch dimension {rows}"
                    )
        return outputs

    def finalize(self):
        self.module = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def _pick_device(args):
    if args.get("model_instance_kind") == "GPU" and torch.cuda.is_available():
        return torch.device("cuda", int(args.get("model_instance_device_id", 0)))
    return torch.device("cpu")


def _stackable(per_request):
    first = per_request[0]
    for arrays in per_request[1:]:
        for a, b in zip(first, arrays, strict=True):
            if a.dtype != b.dtype or a.ndim != b.ndim or a.ndim == 0 or a.shape[1:] != b.shape[1:]:
                return False
    return True


def _response(outputs):
    tensors = [pb_utils.Tensor(name, np.ascontiguousarray(array)) for name, array in outputs]
    return pb_utils.InferenceResponse(output_tensors=tensors)


def _error_response(message):
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))
