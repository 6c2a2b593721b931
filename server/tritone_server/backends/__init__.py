"""Where tensors go: the inference backends behind the gateway."""

from tritone_server.backends.base import InferenceBackend

__all__ = ["InferenceBackend"]
