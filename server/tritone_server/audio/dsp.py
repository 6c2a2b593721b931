"""Downmix, resampling (soxr) and analysis windows: numpy on whole arrays, no per-sample
Python."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import soxr

__all__ = [
    "StreamResampler",
    "frame_windows",
    "mean_of_columns",
    "resample",
    "to_mono",
    "window_starts",
]

Float32Array: TypeAlias = npt.NDArray[np.float32]


# --------------------------------------------------------------------------------------------
# Downmix, resampling, windows
# --------------------------------------------------------------------------------------------


def to_mono(samples: npt.NDArray[np.floating[Any]]) -> Float32Array:
    """[frames, channels] -> [frames] float32, the mean of the channels (1-D passes through)."""
    if samples.ndim == 1:
        return np.ascontiguousarray(samples, dtype=np.float32)
    if samples.ndim != 2:
        raise ValueError(f"expected [frames, channels] samples, got shape {samples.shape}")
    if samples.shape[1] == 1:
        return np.ascontiguousarray(samples[:, 0], dtype=np.float32)
    return mean_of_columns(samples)


def mean_of_columns(frames: npt.NDArray[Any]) -> Float32Array:
    """Mean over axis 1 of [n, channels] as float32, one vector add per channel (numpy's
    own mean over a short last axis is about ten times slower)."""
    channels = frames.shape[1]
    out: Float32Array = frames[:, 0].astype(np.float32)
    for c in range(1, channels):
        out += frames[:, c]
    out *= np.float32(1.0 / channels)
    return out


def _check_rates(from_rate: int, to_rate: int) -> None:
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} and {to_rate}")


def resample(mono: Float32Array, from_rate: int, to_rate: int) -> Float32Array:
    """Resample mono float32 audio with soxr (HQ); the identity when the rates are equal."""
    _check_rates(from_rate, to_rate)
    x = np.ascontiguousarray(mono, dtype=np.float32)
    if from_rate == to_rate or x.size == 0:
        return x
    out: Float32Array = soxr.resample(x, from_rate, to_rate)
    return out


class StreamResampler:
    """One live stream's resampler (soxr.ResampleStream, HQ).

    Feed mono chunks of any size to `process`; call `flush` once at the end for the tail.
    The concatenated output is sample-for-sample what `resample` gives on the whole input
    (same length, no delay); soxr holds back a few hundred output samples until more input
    or `flush` arrives.
    """

    __slots__ = ("_done", "_from", "_in", "_out", "_rs", "_to")

    def __init__(self, from_rate: int, to_rate: int) -> None:
        _check_rates(from_rate, to_rate)
        self._from = from_rate
        self._to = to_rate
        self._rs = (
            None
            if from_rate == to_rate
            else soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality="HQ")
        )
        self._in = 0
        self._out = 0
        self._done = False

    @property
    def samples_in(self) -> int:
        return self._in

    @property
    def samples_out(self) -> int:
        return self._out

    def process(self, mono: Float32Array) -> Float32Array:
        if self._done:
            raise RuntimeError("StreamResampler.process() after flush()")
        x = np.ascontiguousarray(mono, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"expected mono samples, got shape {x.shape}")
        self._in += x.shape[0]
        if self._rs is None:
            out = x.copy() if x is mono else x
        else:
            out = self._rs.resample_chunk(x, last=False)
        self._out += out.shape[0]
        return out

    def flush(self) -> Float32Array:
        """The held-back tail; the stream is finished afterwards (a second flush is empty)."""
        if self._done or self._rs is None:
            self._done = True
            return np.zeros(0, dtype=np.float32)
        self._done = True
        out: Float32Array = self._rs.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._out += out.shape[0]
        return out


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Start offsets of the analysis windows for a clip of `n_samples`.

    0, hop, 2*hop, ... while start + window <= n_samples; [0] if the clip is shorter than one
    window (it will be zero-padded); and if the last full window leaves a tail, one more
    window ending at the clip's end, so every sample is covered. `window == 0` means one
    window spanning the whole clip.
    """
    if n_samples < 0 or window < 0:
        raise ValueError("n_samples and window must not be negative")
    if window == 0 or n_samples <= window:
        return [0]
    if hop <= 0:
        raise ValueError(f"hop must be positive, got {hop}")
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def frame_windows(mono: Float32Array, window: int, hop: int) -> tuple[Float32Array, list[int]]:
    """Cut a mono clip into windows: float32 [num_windows, window] and their starts.

    A clip shorter than a window gives one zero-padded window; `window == 0` gives one
    window that is the whole clip.
    """
    x = np.ascontiguousarray(mono, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {x.shape}")
    n = x.shape[0]
    starts = window_starts(n, window, hop)
    if window == 0:
        return x.reshape(1, n).copy(), starts
    if n < window:
        out: Float32Array = np.zeros((1, window), dtype=np.float32)
        out[0, :n] = x
        return out, starts
    # Regular windows as one strided view (sliding_window_view's checks cost more than the
    # copy for a short clip), copied once; the last window may be set back to the clip's end.
    regular = len(starts) if starts[-1] % hop == 0 else len(starts) - 1
    out = np.empty((len(starts), window), dtype=np.float32)
    step = x.strides[0]
    out[:regular] = np.lib.stride_tricks.as_strided(
        x, shape=(regular, window), strides=(hop * step, step), writeable=False
    )
    if regular < len(starts):
        out[regular] = x[starts[-1] :]
    return out, starts
