"""The interface every backend offers; unit tests put a fake behind the same one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt


class InferenceBackend(Protocol):
    async def infer(
        self,
        model: str,
        inputs: Mapping[str, npt.NDArray[np.float32]],
        outputs: Sequence[str],
        *,
        timeout_s: float | None = None,
    ) -> dict[str, npt.NDArray[np.float32]]:
        """Run one batch-first request; raise a GatewayError on failure."""
        ...

    async def model_configs(self) -> list[tuple[dict[str, Any], str, bool]]:
        """(config JSON, version, ready) for each model in the repository."""
        ...

    async def load_model(self, name: str) -> None:
        """Load or reload a model from the backend's repository."""
        ...

    async def is_ready(self) -> bool:
        """Whether at least one endpoint is live and ready."""
        ...

    async def close(self) -> None: ...
