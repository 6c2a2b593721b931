"""The TorchScript port of TFLM's audio front end matches the compiled generator in the
pinned silabs-mltk 0.20.0 wheel value for value, on speech, noise and silence at several
levels, for the served settings and with noise reduction and PCAN switched on.

Needs (never skipped): silabs-mltk==0.20.0 installed --no-deps (locks/dev.txt), h5py,
ai-edge-litert (the `recipes` extra); apt espeak-ng.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from recipes.speech_commands.dscnn import jit, parity, reference  # noqa: E402
from recipes.speech_commands.dscnn.frontend import MicroFrontend  # noqa: E402
from recipes.speech_commands.dscnn.settings import KWS_FRONTEND  # noqa: E402
from recipes.speech_commands.dscnn.signals import clips  # noqa: E402

Clips = dict[str, npt.NDArray[np.int16]]


@pytest.fixture(scope="module")
def signals() -> Clips:
    return clips()


@pytest.mark.parametrize("length", [16320, 16000])
def test_served_settings_are_bit_exact(signals: Clips, length: int) -> None:
    result = parity.frontend_parity(KWS_FRONTEND, signals, length)
    frames = (length - 480) // 320 + 1
    assert result["values_compared"] == len(signals) * frames * 10
    assert result["values_differing"] == 0, result


def test_noise_reduction_and_pcan_are_bit_exact(signals: Clips) -> None:
    result = parity.frontend_parity(parity.ALL_STAGES, signals, 16320)
    assert result["values_differing"] == 0, result


def test_levels_reach_the_whole_log_range(signals: Clips) -> None:
    """The clips exercise quiet and saturated input, not one narrow band of values."""
    largest = parity.frontend_parity(KWS_FRONTEND, signals, 16320)["largest_value_per_clip"]
    assert largest["silence"] == 0
    assert min(largest.values()) == 0 and max(largest.values()) > 900


def test_batch_rows_are_independent(signals: Clips) -> None:
    """Each row restarts the front end's state, as a fresh generator does per clip."""
    names = ["speech_yes@+0dB", "white@rms3000", "silence"]
    batch = np.stack([signals[n] for n in names]).astype(np.int64)
    port = jit.script(MicroFrontend(parity.ALL_STAGES))
    with torch.no_grad():
        together = port(torch.from_numpy(batch)).numpy()
    for i, name in enumerate(names):
        alone = reference.compiled_frontend(parity.ALL_STAGES, signals[name])
        assert np.array_equal(together[i], alone.astype(np.int64))
