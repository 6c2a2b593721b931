"""Fuzzing and soak helpers shared by `benchmarks/fuzz_gateway.py`, `benchmarks/soak.py` and
the short versions in `tests/integration/test_fuzz.py` and `tests/integration/test_soak.py`.

- `seeds`: valid encoded files of every container the gateway takes, made with soundfile.
- `mutators`: byte-level and container-aware mutations of those files.
- `cases`: every kind of fuzz input (encoded files, raw PCM, stream configs, chunk
  sequences), each reproducible from (seed, index).
- `runner`: sends a case over real gRPC or HTTP and judges its outcome.
- `memory`: RSS sampling of the gateway and the growth measurement over a run's second half.
- `leaky_gateway`: the real gateway with one deliberate leak, the soak's positive control.
"""
