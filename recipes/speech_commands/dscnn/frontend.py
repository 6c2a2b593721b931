"""TFLM's fixed-point audio front end (window, int16 kissfft, mel filterbank, noise
reduction, PCAN, log) as a TorchScript module, in int64 tensor arithmetic.

Why integer math: the DS-CNN was trained on this front end's uint16 output, and a float
re-implementation drifts by whole units where the C code rounds, shifts and saturates. Every
int16 store of the C code is reproduced with ``_wrap16``; the parity test compares this
module with mltk's compiled generator value for value.

One corner case of the C code is not reproduced: an FFT bin whose real and imaginary parts
are both -32768 (its energy overflows int32 and is then read as a huge unsigned value).
"""

import torch
from torch import Tensor, nn

from recipes.speech_commands.dscnn import tables
from recipes.speech_commands.dscnn.settings import FrontendSettings

__all__ = ["MicroFrontend"]

_NR_BITS = 14
_PCAN_SNR_BITS = 12
_PCAN_OUTPUT_BITS = 6
_LOG_COEFF = 45426


def _wrap16(x: Tensor) -> Tensor:
    """What storing an int into an int16 does (two's complement)."""
    return ((x + 32768) & 0xFFFF) - 32768


def _fixdiv(x: Tensor, scale: int) -> Tensor:
    """kissfft's C_FIXDIV, a divide by k as x * scale in Q15 (scale = 32767 // k), rounded."""
    return _wrap16((x * scale + 16384) >> 15)


def _cmul(ar: Tensor, ai: Tensor, br: Tensor, bi: Tensor) -> tuple[Tensor, Tensor]:
    return (
        _wrap16((ar * br - ai * bi + 16384) >> 15),
        _wrap16((ar * bi + ai * br + 16384) >> 15),
    )


def _digit_reverse_4(n: int) -> list[int]:
    digits = 0
    while 4**digits < n:
        digits += 1
    out = []
    for pos in range(n):
        value, rest = 0, pos
        for _ in range(digits):
            value = value * 4 + rest % 4
            rest //= 4
        out.append(value)
    return out


class MicroFrontend(nn.Module):
    """int16 samples [batch, n] (as int64) -> uint16 features [batch, frames, channels]
    (as int64), frames = (n - window) // step + 1, the state reset at each row's start."""

    window: Tensor
    tw: Tensor
    super_tw: Tensor
    perm: Tensor
    weights: Tensor
    unweights: Tensor
    pow2: Tensor
    nr_smoothing: Tensor
    pcan_lut: Tensor
    log_lut: Tensor

    def __init__(self, settings: FrontendSettings) -> None:
        super().__init__()
        s = settings
        self.size = s.window_samples
        self.step = s.step_samples
        self.fft_size = s.fft_length
        n = self.fft_size // 2
        if 4 ** (n.bit_length() // 2) != n or n.bit_length() % 2 == 0:
            raise ValueError(f"the port supports FFT sizes 2 * 4^k, not {self.fft_size}")
        self.n = n
        self.channels = s.filterbank_n_channels
        tw, sup = tables.kiss_twiddles(self.fft_size)
        weights, unweights, start, end = tables.filterbank(s)
        self.start = start
        self.end = end
        self.register_buffer("window", torch.from_numpy(tables.window(self.size)))
        self.register_buffer("tw", torch.from_numpy(tw))
        self.register_buffer("super_tw", torch.from_numpy(sup))
        self.register_buffer("perm", torch.tensor(_digit_reverse_4(n), dtype=torch.int64))
        self.register_buffer("weights", torch.from_numpy(weights))
        self.register_buffer("unweights", torch.from_numpy(unweights))
        self.register_buffer("pow2", 2 ** torch.arange(0, 63, dtype=torch.int64))
        self.correction_bits = self.fft_size.bit_length() - 1 - tables.FILTERBANK_BITS // 2

        self.nr_enable = s.noise_reduction_enable
        self.nr_bits = s.noise_reduction_smoothing_bits
        even = int(s.noise_reduction_even_smoothing * (1 << _NR_BITS))
        odd = int(s.noise_reduction_odd_smoothing * (1 << _NR_BITS))
        smoothing = [even if c % 2 == 0 else odd for c in range(self.channels)]
        self.register_buffer("nr_smoothing", torch.tensor(smoothing, dtype=torch.int64))
        self.nr_min_remaining = int(s.noise_reduction_min_signal_remaining * (1 << _NR_BITS))

        self.pcan_enable = s.pcan_enable
        self.pcan_snr_shift = s.pcan_gain_bits - self.correction_bits - _PCAN_SNR_BITS
        self.register_buffer("pcan_lut", torch.from_numpy(tables.pcan_lut(s, self.correction_bits)))

        self.log_enable = s.log_scale_enable
        self.log_shift = s.log_scale_shift
        self.register_buffer("log_lut", torch.from_numpy(tables.log_lut()))
        self.window_bits = tables.WINDOW_BITS
        self.nr_q = _NR_BITS
        self.snr_bits = _PCAN_SNR_BITS
        self.pcan_out_bits = _PCAN_OUTPUT_BITS
        self.log_coeff = _LOG_COEFF

    def _bit_length(self, x: Tensor) -> Tensor:
        """MostSignificantBit32/64 of non-negative x: 0 for 0, else floor(log2 x) + 1."""
        return (x.unsqueeze(-1) >= self.pow2).sum(-1)

    def _fft(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """kiss_fftr in int16 fixed point: [rows, fft_size] -> real, imag [rows, fft_size/2+1]."""
        n = self.n
        zr = x[..., 0::2].index_select(-1, self.perm)
        zi = x[..., 1::2].index_select(-1, self.perm)
        rows = x.shape[0]
        m = 1
        while m < n:
            groups = n // (4 * m)
            zr = zr.reshape(rows, groups, 4, m)
            zi = zi.reshape(rows, groups, 4, m)
            u = torch.arange(m, device=x.device) * groups
            w1r, w1i = self.tw[u, 0], self.tw[u, 1]
            w2r, w2i = self.tw[2 * u, 0], self.tw[2 * u, 1]
            w3r, w3i = self.tw[3 * u, 0], self.tw[3 * u, 1]
            a0r, a0i = _fixdiv(zr[..., 0, :], 8191), _fixdiv(zi[..., 0, :], 8191)
            a1r, a1i = _fixdiv(zr[..., 1, :], 8191), _fixdiv(zi[..., 1, :], 8191)
            a2r, a2i = _fixdiv(zr[..., 2, :], 8191), _fixdiv(zi[..., 2, :], 8191)
            a3r, a3i = _fixdiv(zr[..., 3, :], 8191), _fixdiv(zi[..., 3, :], 8191)
            s0r, s0i = _cmul(a1r, a1i, w1r, w1i)
            s1r, s1i = _cmul(a2r, a2i, w2r, w2i)
            s2r, s2i = _cmul(a3r, a3i, w3r, w3i)
            s5r, s5i = _wrap16(a0r - s1r), _wrap16(a0i - s1i)
            f0r, f0i = _wrap16(a0r + s1r), _wrap16(a0i + s1i)
            s3r, s3i = _wrap16(s0r + s2r), _wrap16(s0i + s2i)
            s4r, s4i = _wrap16(s0r - s2r), _wrap16(s0i - s2i)
            zr = torch.stack(
                [
                    _wrap16(f0r + s3r),
                    _wrap16(s5r + s4i),
                    _wrap16(f0r - s3r),
                    _wrap16(s5r - s4i),
                ],
                dim=-2,
            ).reshape(rows, n)
            zi = torch.stack(
                [
                    _wrap16(f0i + s3i),
                    _wrap16(s5i - s4r),
                    _wrap16(f0i - s3i),
                    _wrap16(s5i + s4r),
                ],
                dim=-2,
            ).reshape(rows, n)
            m *= 4

        # Split the packed complex FFT into the real FFT (kiss_fftr).
        half = n // 2
        dcr, dci = _fixdiv(zr[..., 0], 16383), _fixdiv(zi[..., 0], 16383)
        k = torch.arange(1, half + 1, device=x.device)
        pkr = _fixdiv(zr.index_select(-1, k), 16383)
        pki = _fixdiv(zi.index_select(-1, k), 16383)
        nkr = _fixdiv(zr.index_select(-1, n - k), 16383)
        nki = _fixdiv(_wrap16(-zi.index_select(-1, n - k)), 16383)
        f1r, f1i = _wrap16(pkr + nkr), _wrap16(pki + nki)
        f2r, f2i = _wrap16(pkr - nkr), _wrap16(pki - nki)
        twr, twi = _cmul(f2r, f2i, self.super_tw[:, 0], self.super_tw[:, 1])
        lo_r, lo_i = _wrap16((f1r + twr) >> 1), _wrap16((f1i + twi) >> 1)
        hi_r, hi_i = _wrap16((f1r - twr) >> 1), _wrap16((twi - f1i) >> 1)
        # Bin n/2 is written twice by the C loop; its second (hi) write stands.
        zero = torch.zeros_like(dcr).unsqueeze(-1)
        real = torch.cat(
            [
                _wrap16(dcr + dci).unsqueeze(-1),
                lo_r[..., : half - 1],
                hi_r.flip(-1),
                _wrap16(dcr - dci).unsqueeze(-1),
            ],
            dim=-1,
        )
        imag = torch.cat([zero, lo_i[..., : half - 1], hi_i.flip(-1), zero], dim=-1)
        return real, imag

    def _sqrt_round(self, x: Tensor) -> Tensor:
        """Sqrt64 of filterbank.c: integer square root rounded to nearest (not past 0xFFFF
        for inputs below 2^32)."""
        r = torch.sqrt(x.to(torch.float64)).to(torch.int64)
        r = r - (r * r > x).to(torch.int64)
        r = r + ((r + 1) * (r + 1) <= x).to(torch.int64)
        up = (x - r * r > r) & ~((x < 2**32) & (r == 0xFFFF))
        return r + up.to(torch.int64)

    def _wide_dynamic(self, x: Tensor) -> Tensor:
        interval = self._bit_length(x)
        base = (4 * interval - 6).clamp(min=0)
        up = (x << (11 - interval).clamp(min=0)) >> (interval - 11).clamp(min=0)
        frac = up & 0x3FF
        result = (self.pcan_lut[base + 2] * frac) >> 5
        result = result + self.pcan_lut[base + 1] * 32
        result = result * frac
        result = ((result + (1 << 14)) >> 15) + self.pcan_lut[base]
        small = self.pcan_lut[x.clamp(max=2)]
        return torch.where(x <= 2, small, _wrap16(result))

    def _pcan(self, signal: Tensor, estimate: Tensor) -> Tensor:
        gain = self._wide_dynamic(estimate)
        snr = (signal * gain) >> self.pcan_snr_shift
        low = (snr * snr) >> (2 + 2 * self.snr_bits - self.pcan_out_bits)
        high = (snr >> (self.snr_bits - self.pcan_out_bits)) - (1 << self.pcan_out_bits)
        return torch.where(snr < (2 << self.snr_bits), low, high) & 0xFFFFFFFF

    def _denoise(self, signal: Tensor) -> Tensor:
        """NoiseReductionApply (and PCAN, which reads its estimate) frame by frame."""
        estimate = torch.zeros_like(signal[:, 0])
        sm = self.nr_smoothing
        outputs: list[Tensor] = []
        for t in range(signal.shape[1]):
            out = signal[:, t]
            if self.nr_enable:
                scaled = (out << self.nr_bits) & 0xFFFFFFFF
                estimate = (scaled * sm + estimate * ((1 << self.nr_q) - sm)) >> self.nr_q
                est = torch.minimum(estimate, scaled)
                floor = (out * self.nr_min_remaining) >> self.nr_q
                out = torch.maximum((scaled - est) >> self.nr_bits, floor)
            if self.pcan_enable:
                out = self._pcan(out, estimate)
            outputs.append(out)
        return torch.stack(outputs, dim=1)

    def _log(self, x: Tensor) -> Tensor:
        integer = self._bit_length(x) - 1
        frac = x - self.pow2[integer.clamp(min=0)]
        frac = (frac << (16 - integer).clamp(min=0)) >> (integer - 16).clamp(min=0)
        base_seg = frac >> 9
        c0 = self.log_lut[base_seg]
        c1 = self.log_lut[base_seg + 1]
        rel = ((c1 - c0) * (frac - 512 * base_seg)) >> 16
        log2 = ((integer << 16) + frac + c0 + rel) & 0xFFFFFFFF
        loge = (self.log_coeff * log2 + 32768) >> 16
        return (((loge << self.log_shift) & 0xFFFFFFFF) + 32768) >> 16

    def forward(self, samples: Tensor) -> Tensor:
        frames = (samples.shape[1] - self.size) // self.step + 1
        starts = torch.arange(frames, device=samples.device) * self.step
        index = starts.unsqueeze(1) + torch.arange(self.size, device=samples.device)
        windowed = (samples[:, index] * self.window) >> self.window_bits
        # int16 abs(-32768) stays negative in C, so that sample never raises the peak.
        magnitude = torch.where(windowed == -32768, torch.zeros_like(windowed), windowed.abs())
        peak = magnitude.amax(dim=-1, keepdim=True)
        shift = 15 - self._bit_length(peak)
        fft_in = _wrap16(windowed << shift)
        batch, frames = fft_in.shape[0], fft_in.shape[1]
        pad = torch.zeros(
            batch, frames, self.fft_size - self.size, dtype=fft_in.dtype, device=fft_in.device
        )
        padded = torch.cat([fft_in, pad], dim=-1).reshape(batch * frames, self.fft_size)
        real, imag = self._fft(padded)
        real, imag = real.reshape(batch, frames, -1), imag.reshape(batch, frames, -1)
        energy = real * real + imag * imag
        energy[..., : self.start] = 0
        energy[..., self.end :] = 0
        e = energy.unsqueeze(-2)
        weighted = (e * self.weights).sum(-1)
        unweighted = (e * self.unweights).sum(-1)
        work = weighted[..., 1:] + unweighted[..., :-1]
        signal = self._sqrt_round(work) >> shift
        if self.nr_enable or self.pcan_enable:
            signal = self._denoise(signal)
        if self.log_enable:
            if self.correction_bits < 0:
                value = signal >> -self.correction_bits
            else:
                value = (signal << self.correction_bits) & 0xFFFFFFFF
            signal = torch.where(value > 1, self._log(value.clamp(min=2)), torch.zeros_like(value))
        return signal.clamp(max=65535)
