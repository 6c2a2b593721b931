"""Tritone's offline tools: ``tritone train``, ``tritone import-hf`` and ``tritone evaluate``.

Nothing on the serving path needs them, so they live apart from the gateway
(`tritone_server`) and the light SDK (`tritone`): this package may import both, neither
imports it (tests/unit/test_import_boundaries.py). The subpackages, each with its command in
``cli``: `evaluation` (labelled data sets, metrics and detection scoring, plots), `training`
(heads on a backbone, fused into a servable model), `hf_import` (local Hugging Face
checkpoints to TorchScript). The ``tritone`` console script finds the commands through the
``tritone.commands`` entry points, which name the objects in `commands`.
"""
