"""Command-line arguments every client command shares: where the gateway is and how to log in.

Its own module so that ``tritone.cli`` (classify, stream, models) and ``tritone.evaluate``
take the same ``--target``, ``--token`` and ``--tls`` without importing each other.
Standard library only.
"""

from __future__ import annotations

import argparse
import os

__all__ = ["DEFAULT_TARGET", "add_connection_arguments"]

DEFAULT_TARGET = "127.0.0.1:50051"


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """--target, --token and --tls, with their TRITONE_* defaults read at parser build time."""
    parser.add_argument(
        "--target",
        default=os.environ.get("TRITONE_TARGET") or DEFAULT_TARGET,
        help="gateway host:port (default: $TRITONE_TARGET or %(default)s)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("TRITONE_TOKEN") or None,
        help="bearer token (default: $TRITONE_TOKEN)",
    )
    parser.add_argument("--tls", action="store_true", help="connect with TLS (system roots)")
