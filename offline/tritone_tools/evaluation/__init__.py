"""``tritone evaluate`` and what scoring needs: `datasets` (labelled audio on disk),
`metrics` (accuracy, P/R/F1, detection curves and calibration), `plots` (matplotlib, the
``[eval]`` extra) and `cli` (the command)."""
