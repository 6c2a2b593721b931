"""The fuzzing and soak helpers do what the fuzz and soak figures rely on."""

from __future__ import annotations

import io
import random

import numpy as np
import soundfile as sf

from support.fuzzing.cases import KINDS, FuzzConfig, make_case
from support.fuzzing.memory import MB, second_half_growth
from support.fuzzing.mutators import Field, fix_ogg_checksums, size_fields
from support.fuzzing.seeds import CONTAINERS, make_seeds


def test_seeds_cover_every_container_and_decode() -> None:
    seeds, unwritable = make_seeds()
    assert {s.container for s in seeds} | {k.split("-")[0] for k in unwritable} == set(CONTAINERS)
    for seed in seeds:
        samples, rate = sf.read(io.BytesIO(seed.data), dtype="float32")
        assert rate in (8000, 16000, 48000)
        assert len(samples) > 0, seed.name


def test_size_fields_find_the_wav_data_length() -> None:
    seeds, _ = make_seeds()
    wav = next(s.data for s in seeds if s.name == "wav-16000x1")
    data_at = wav.index(b"data") + 4
    field = next(f for f in size_fields(wav) if f.offset == data_at)
    assert field.read(wav) == len(wav) - data_at - 4


def test_negative_lengths_wrap_to_twos_complement() -> None:
    data = bytearray(8)
    Field(0, 4, big_endian=False).write(data, -1)
    assert data[:4] == b"\xff\xff\xff\xff"


def test_ogg_checksums_are_recomputed_correctly() -> None:
    seeds, _ = make_seeds()
    ogg = next(s.data for s in seeds if s.container == "ogg_vorbis")
    broken = bytearray(ogg)
    for at in range(len(broken) - 4):
        if broken[at : at + 4] == b"OggS":
            broken[at + 22 : at + 26] = b"\0\0\0\0"
    fix_ogg_checksums(broken)
    assert bytes(broken) == ogg


def test_cases_are_reproducible_and_of_every_kind() -> None:
    seeds, _ = make_seeds()
    cfg = FuzzConfig(huge_chunk_bytes=4096, tiny_chunks=10)
    first = [make_case(3, i, seeds, cfg) for i in range(200)]
    again = [make_case(3, i, seeds, cfg) for i in range(200)]
    assert [c.detail for c in first] == [c.detail for c in again]
    assert [c.size() for c in first] == [c.size() for c in again]
    assert {c.kind for c in first} == set(KINDS)


def test_growth_flags_a_linear_leak_and_not_a_warm_up() -> None:
    rng = random.Random(0)
    noise = [rng.uniform(-2, 2) * MB for _ in range(200)]
    warm_up = [(t, int(200 * MB + min(t, 50) * MB + noise[t])) for t in range(200)]
    leak = [(t, int(200 * MB + t * MB + noise[t])) for t in range(200)]
    assert not second_half_growth(warm_up).leaks(32 * MB)
    growth = second_half_growth(leak)
    assert growth.leaks(32 * MB)
    assert abs(growth.growth_bytes / MB - 95) < 10  # from ~t=100 to the last 10 % (~t=195)
    assert growth.peak_bytes == max(v for _, v in leak)
    assert np.isclose(growth.start_bytes / MB, 210, atol=5)  # median of the first 10 %
