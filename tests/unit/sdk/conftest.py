"""The SDK tests talk to the fake gateway of support/fake_gateway.py."""

from support.fake_gateway import client, fake_server

__all__ = ["client", "fake_server"]
