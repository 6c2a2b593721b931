"""The constants TFLM's fixed-point audio front end derives from its settings.

Each function recomputes, in numpy with the C code's float32/float64 mix, a table that
TFLM's ``*_util.c`` builds at start-up (window, kissfft twiddles, mel filterbank weights,
PCAN gain lookup, log2 correction). The torch port (frontend.py) stores them as buffers;
the parity test against mltk's compiled generator is what shows they are right.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from recipes.speech_commands.dscnn.settings import FrontendSettings

__all__ = [
    "FILTERBANK_BITS",
    "WINDOW_BITS",
    "filterbank",
    "kiss_twiddles",
    "log_lut",
    "pcan_lut",
    "window",
]

WINDOW_BITS = 12
FILTERBANK_BITS = 12
_SAMP_MAX = 32767
_f32 = np.float32
Ints = npt.NDArray[np.int64]


def window(size: int) -> Ints:
    """Hann window with a half-sample offset in Q12 (window_util.c)."""
    arg = _f32(math.pi * 2.0 / float(_f32(size)))
    out = np.empty(size, dtype=np.int64)
    for i in range(size):
        cos = np.cos(_f32(float(arg) * (i + 0.5)))
        value = _f32(0.5 - 0.5 * float(cos))
        out[i] = math.floor(float(_f32(value * _f32(1 << WINDOW_BITS))) + 0.5)
    return out


def _cexp(phase: float) -> tuple[int, int]:
    return (
        math.floor(0.5 + _SAMP_MAX * math.cos(phase)),
        math.floor(0.5 + _SAMP_MAX * math.sin(phase)),
    )


def kiss_twiddles(fft_size: int) -> tuple[Ints, Ints]:
    """kissfft's int16 twiddles for the complex FFT of fft_size/2 points ([n, 2]) and the
    real-FFT split 'super twiddles' ([n/2, 2]) (kiss_fft_alloc, kiss_fftr_alloc)."""
    n = fft_size // 2
    tw = np.array([_cexp(-2.0 * math.pi * i / n) for i in range(n)], dtype=np.int64)
    sup = np.array([_cexp(-math.pi * ((i + 1) / n + 0.5)) for i in range(n // 2)], dtype=np.int64)
    return tw, sup


def _freq_to_mel(freq: np.float32) -> np.float32:
    return _f32(1127.0 * math.log1p(float(freq) / 700.0))


def filterbank(s: FrontendSettings) -> tuple[Ints, Ints, int, int]:
    """Dense weights and unweights, [channels + 1, spectrum bins], and the [start, end)
    bins the energy is computed over (filterbank_util.c; the C code's padding and
    alignment only add zero weights, so a dense matrix gives the same sums)."""
    spectrum_size = s.fft_length // 2 + 1
    n = s.filterbank_n_channels + 1
    mel_low = _freq_to_mel(_f32(s.filterbank_lower_band_limit))
    mel_hi = _freq_to_mel(_f32(s.filterbank_upper_band_limit))
    spacing = _f32(_f32(mel_hi - mel_low) / _f32(n))
    centers = [_f32(mel_low + _f32(spacing * _f32(i + 1))) for i in range(n)]
    hz_per_sbin = _f32(0.5 * s.sample_rate_hz / float(_f32(spectrum_size) - 1))
    start_index = int(1.5 + s.filterbank_lower_band_limit / float(hz_per_sbin))

    weights = np.zeros((n, spectrum_size), dtype=np.int64)
    unweights = np.zeros((n, spectrum_size), dtype=np.int64)
    end_index = 0
    chan_start = start_index
    for chan in range(n):
        freq = chan_start
        while _freq_to_mel(_f32(freq * hz_per_sbin)) <= centers[chan]:
            freq += 1
        denom = mel_low if chan == 0 else centers[chan - 1]
        for f in range(chan_start, freq):
            w = _f32(
                _f32(centers[chan] - _freq_to_mel(_f32(f * hz_per_sbin)))
                / _f32(centers[chan] - denom)
            )
            weights[chan, f] = math.floor(float(_f32(w * _f32(1 << FILTERBANK_BITS))) + 0.5)
            unweights[chan, f] = math.floor((1.0 - float(w)) * (1 << FILTERBANK_BITS) + 0.5)
        end_index = max(end_index, freq)
        chan_start = freq
    if end_index >= spectrum_size:
        raise ValueError("filterbank upper band limit is above the Nyquist bin")
    return weights, unweights, start_index, end_index


def pcan_lut(s: FrontendSettings, input_correction_bits: int) -> Ints:
    """PCAN's piecewise-quadratic gain table, 125 int16 entries (pcan_gain_control_util.c)."""
    input_bits = s.noise_reduction_smoothing_bits - input_correction_bits

    def gain(x: int) -> int:
        x_as_float = _f32(_f32(x) / _f32(1 << input_bits))
        g = _f32(
            _f32(1 << s.pcan_gain_bits)
            * np.power(_f32(x_as_float + _f32(s.pcan_offset)), _f32(-s.pcan_strength))
        )
        if g > 32767:
            return 32767
        return int(_f32(g + _f32(0.5)))

    bits = 32
    lut = np.zeros(4 * bits - 3, dtype=np.int64)
    lut[0] = gain(0)
    lut[1] = gain(1)
    for interval in range(2, bits + 1):
        x0 = 1 << (interval - 1)
        x1 = x0 + (x0 >> 1)
        x2 = x0 + (x0 - 1) if interval == bits else 2 * x0
        y0, y1, y2 = gain(x0), gain(x1), gain(x2)
        a1 = 4 * (y1 - y0) - (y2 - y0)
        a2 = (y2 - y0) - a1
        base = 4 * interval - 6
        lut[base] = y0
        lut[base + 1] = np.int16(np.int64(a1).astype(np.int16))
        lut[base + 2] = np.int16(np.int64(a2).astype(np.int16))
    return lut


def log_lut() -> Ints:
    """log2(1 + x) - x at 128 segments in Q16, plus one guard entry (TFLM's kLogLut,
    which this formula reproduces entry for entry)."""
    i = np.arange(129, dtype=np.float64)
    table = np.round(65536.0 * (np.log2(1.0 + i / 128.0) - i / 128.0)).astype(np.int64)
    return np.concatenate([table, np.zeros(1, dtype=np.int64)])
