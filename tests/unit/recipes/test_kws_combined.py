"""The combined graph (recipes/speech_commands/combined.py) gives what compare.combine gives
on the two served models' own scores, for every rule, and scripts without naming a device."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from recipes.speech_commands import compare  # noqa: E402
from recipes.speech_commands.combined import Combined  # noqa: E402
from recipes.speech_commands.dscnn import jit  # noqa: E402


@pytest.fixture(scope="module")
def models() -> tuple[torch.jit.ScriptModule, torch.jit.ScriptModule]:
    return jit.load(compare.HEAD_MODEL).eval(), jit.load(compare.DSCNN_MODEL).eval()


@pytest.mark.parametrize("rule", compare.RULES)
def test_the_graph_combines_as_the_comparison_did(
    models: tuple[torch.jit.ScriptModule, torch.jit.ScriptModule], rule: str
) -> None:
    head, dscnn = models
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 16_000)) * 0.05).astype(np.float32)
    x[1] *= 0.0
    combined = jit.script(Combined(head, dscnn.frontend, dscnn.network, 0.25, rule, 0.1)).eval()
    with torch.no_grad():
        got = torch.softmax(combined(torch.from_numpy(x)), dim=1).numpy()
        h = torch.softmax(head(torch.from_numpy(x)), dim=1).numpy()
        d = torch.softmax(dscnn(torch.from_numpy(x)), dim=1).numpy()
    want = compare.combine(rule, d, h)
    np.testing.assert_allclose(got, want, atol=1e-5)
