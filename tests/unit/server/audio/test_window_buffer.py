"""WindowBuffer: samples by stream index, windows as views, the same values as one array."""

from __future__ import annotations

import numpy as np
import pytest

from tritone_server.audio.window_buffer import WindowBuffer


@pytest.mark.parametrize("chunk", [1, 7, 100, 1000, 5000])
def test_windows_match_the_whole_signal_whatever_the_chunk_size(chunk: int) -> None:
    rng = np.random.default_rng(0)
    signal = rng.standard_normal(12_345).astype(np.float32)
    window, hop, context = 400, 160, 64
    buf = WindowBuffer(4 * (window + hop), leading_zeros=context)
    whole = np.concatenate([np.zeros(context, np.float32), signal])
    next_start = 0
    seen = 0
    for i in range(0, signal.shape[0], chunk):
        buf.append(signal[i : i + chunk])
        assert buf.end == context + min(i + chunk, signal.shape[0])
        starts = []
        while next_start + window <= buf.end:
            starts.append(next_start)
            next_start += hop
        if starts:
            got = buf.windows(starts[0], len(starts), hop, window)
            expected = np.stack([whole[s : s + window] for s in starts])
            np.testing.assert_array_equal(got, expected)
            seen += len(starts)
        buf.discard_before(next_start)
        assert buf.start == min(next_start, buf.end)
    assert seen == (whole.shape[0] - window) // hop + 1
    tail = buf.window(next_start, window)  # zero-padded past the end
    np.testing.assert_array_equal(tail[: whole.shape[0] - next_start], whole[next_start:])
    assert not tail[whole.shape[0] - next_start :].any()


def test_full_windows_are_views_and_padded_ones_copies() -> None:
    buf = WindowBuffer(64)
    buf.append(np.arange(50, dtype=np.float32))
    view = buf.windows(0, 3, 10, 20)
    assert view.base is not None and not view.flags.owndata
    assert view[2, 0] == 20
    padded = buf.windows(30, 2, 10, 20)
    assert padded.shape == (2, 20) and padded[1, -1] == 0 and padded[0, 0] == 30


def test_leading_zeros_count_as_samples() -> None:
    buf = WindowBuffer(8, leading_zeros=3)
    assert (buf.start, buf.end) == (0, 3)
    buf.append(np.ones(2, np.float32))
    np.testing.assert_array_equal(buf.window(0, 6), [0, 0, 0, 1, 1, 0])
