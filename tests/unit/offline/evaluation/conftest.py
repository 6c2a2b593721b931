"""``tritone evaluate`` runs against the fake gateway of support/fake_gateway.py."""

from support.fake_gateway import fake_server

__all__ = ["fake_server"]
