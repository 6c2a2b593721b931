"""Tritone gateway: gRPC (and HTTP) in front, NVIDIA Triton behind."""

__all__: list[str] = []
