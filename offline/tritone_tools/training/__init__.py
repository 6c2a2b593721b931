"""``tritone train``: classifier heads on Tritone's backbones, fused into servable models.

- `data`: audiofolder / CSV loading, decoded to 16 kHz mono.
- `backbones`: the backbones (speaker-embedding, speech-commands) loaded in-process.
- `embed`: backbone features per analysis window, windowed as the gateway windows.
- `heads`: logistic-regression and MLP heads, early stopping on validation loss.
- `openset`: centroids and the calibrated ``unknown`` threshold.
- `export`: the fused TorchScript model and the model directory with its card.
- `cli`: the command, ``main(argv) -> int``, and `train` for callers in Python.

Importing the package itself loads nothing (torch comes with `cli`).
"""
