"""Everything that talks to or prepares Triton: `backend` (the interface), `client` (the
tritonclient channel pool), `local` (a real tritonserver from the nvidia-pytriton wheel, put
together from `install`, `work_dir` and `process`), `derived_repository` (the python-backend
copy of the model repository), `model_config` (the one config writer) and `torchscript` (the
device-constant check and the one TorchScript warning filter)."""
