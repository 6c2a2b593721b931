"""What the speech-commands card claims, read from the result files its figures come from,
and how far a small test sample may fall short of a claim before the test fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scipy import stats  # type: ignore[import-untyped]

RESULTS = Path(__file__).resolve().parents[2] / "recipes" / "speech_commands" / "results"
LEVEL = 0.01
"""A model exactly as good as claimed fails a test with probability at most LEVEL."""


def claim(name: str) -> dict[str, Any]:
    path = RESULTS / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: the card's figures come from it", pytrace=False)
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def binomial_floor(n: int, p: float) -> int:
    """Fewest successes of n at rate p that a test accepts (P(fewer) < LEVEL)."""
    return int(stats.binom.ppf(LEVEL, n, p))


def poisson_ceiling(rate_per_hour: float, seconds: float) -> int:
    """Most events in ``seconds`` at ``rate_per_hour`` that a test accepts."""
    return int(stats.poisson.ppf(1.0 - LEVEL, rate_per_hour * seconds / 3600.0))
