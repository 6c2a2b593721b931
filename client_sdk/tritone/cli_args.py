"""Command-line arguments every client command shares: where the gateway is and how to log in.

Public so that ``tritone.cli`` (classify, stream, models) and the subcommands other packages
add (``tritone evaluate``, ``tritone train``) take the same ``--target``, ``--token``,
``--tls``, ``--tls-ca`` and ``--load-balancing``. Light: the standard library and the SDK's
own config.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from tritone._config import LOAD_BALANCING_POLICIES, TlsConfig

__all__ = ["DEFAULT_TARGET", "add_connection_arguments", "connection_options"]

DEFAULT_TARGET = "127.0.0.1:50051"


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """--target, --token, --tls, --tls-ca and --load-balancing, with their TRITONE_* defaults
    read at parser build time."""
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
    parser.add_argument(
        "--tls-ca",
        type=Path,
        metavar="PEM",
        help="connect with TLS, trusting this CA bundle (implies --tls)",
    )
    parser.add_argument(
        "--load-balancing",
        choices=LOAD_BALANCING_POLICIES,
        help="gRPC policy over the addresses --target resolves to (dns:///headless:50051)",
    )


def connection_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `AsyncClient` keyword arguments that `add_connection_arguments` flags ask for."""
    tls: TlsConfig | bool | None = None
    if args.tls_ca is not None:
        tls = TlsConfig(root_certificates=args.tls_ca.read_bytes())
    elif args.tls:
        tls = True
    return {"token": args.token, "tls": tls, "load_balancing": args.load_balancing}
