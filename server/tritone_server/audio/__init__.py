"""Untrusted audio in, mono float32 out.

- `formats`: the caps (`AudioLimits`), PCM formats and raw PCM conversion (the fast path);
- `decode`: encoded files through libsndfile, checked before and while decoding;
- `decode_pool` (+ `_decode_worker`): that decoding in killable worker processes;
- `dsp`: downmix, resampling and analysis windows.
"""
