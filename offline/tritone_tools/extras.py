"""Optional packages behind pip extras, checked before a command needs them.

``tritone evaluate`` runs on what the light SDK needs (grpcio, protobuf, numpy). Pictures
(matplotlib) and progress bars (tqdm) come with ``pip install 'tritone[eval]'``; the code
that uses them imports them inside the function, after `require` has said which extra to
install if they are missing, so a run fails at its start rather than after its work.
"""

from __future__ import annotations

import importlib.util

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ImportError):
    """A feature needs an optional package that is not installed; the message names the extra."""


def require(package: str, feature: str, extra: str = "eval") -> None:
    """Raise `MissingExtraError` unless `package` is importable (without importing it)."""
    if importlib.util.find_spec(package) is None:
        raise MissingExtraError(
            f"{feature} needs {package}: pip install 'tritone[{extra}]'", name=package
        )
