from __future__ import annotations

import json

import pytest

from support.fake_backend import LABELS, LevelsBackend, config
from tritone_server.core.models import Catalogue, ModelConfigError, spec_from_config
from tritone_server.errors import BackendUnavailable, ModelNotFound


def test_spec_reads_everything_from_the_config() -> None:
    spec = spec_from_config(config(window=8000, hop=4000, rate=16000), "3")
    assert spec.labels == LABELS
    assert (spec.sample_rate, spec.window_samples, spec.hop_samples) == (16000, 8000, 4000)
    assert spec.version == "3" and spec.max_batch_size == 4
    assert spec.output_name == "logits" and not spec.stateful


def _embedder(task: str) -> dict[str, object]:
    c = config(task)
    c["output"] = [{"name": "embedding", "data_type": "TYPE_FP32", "dims": ["2"]}]
    c["parameters"].pop("labels")
    c["parameters"]["task"] = {"string_value": task}
    return c


@pytest.mark.parametrize("task", ["embedding", "speaker-verification"])
def test_an_embedding_model_is_known_by_its_output_whatever_its_task(task: str) -> None:
    spec = spec_from_config(_embedder(task), "1")
    assert spec.is_embedding and spec.labels == ()
    assert not spec_from_config(config(), "1").is_embedding


def test_a_logits_model_needs_at_least_one_label() -> None:
    c = config()
    c["output"][0]["dims"] = ["-1"]
    c["parameters"]["labels"] = {"string_value": "[]"}
    with pytest.raises(ModelConfigError, match="'labels' is empty"):
        spec_from_config(c, "1")


def test_state_tensors_are_found_by_name() -> None:
    spec = spec_from_config(config(stateful=True), "1")
    assert spec.stateful
    assert [(s.input_name, s.output_name, s.shape) for s in spec.states] == [
        ("state_in", "state_out", (1,))
    ]


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda c: c["parameters"].pop("sample_rate"), "sample_rate"),
        (lambda c: c["parameters"].update(activation={"string_value": "tanh"}), "activation"),
        (lambda c: c["parameters"].update(labels={"string_value": '["a"]'}), "labels"),
        (lambda c: c["parameters"].update(labels={"string_value": "not json"}), "JSON"),
        (lambda c: c.update(max_batch_size=0), "max_batch_size"),
        (lambda c: c["input"][0].update(name="audio"), "waveform"),
        (lambda c: c["parameters"].update(hop_samples={"string_value": "0"}), "hop_samples"),
    ],
)
def test_unfit_configs_are_refused_with_the_reason(mutate: object, words: str) -> None:
    c = config()
    mutate(c)  # type: ignore[operator]
    with pytest.raises(ModelConfigError, match=words):
        spec_from_config(c, "1")


async def test_catalogue_skips_unfit_models_and_finds_the_rest() -> None:
    broken = config("broken")
    broken["parameters"].pop("task")
    catalogue = Catalogue("levels")
    with pytest.raises(BackendUnavailable):
        catalogue.get("levels")  # not loaded yet
    specs = await catalogue.reload(LevelsBackend([config(), broken]))
    assert [s.name for s in specs] == ["levels"]
    assert catalogue.get("").name == "levels"
    with pytest.raises(ModelNotFound, match="broken"):
        catalogue.get("broken")
    assert json.loads(broken["parameters"]["labels"]["string_value"]) == list(LABELS)


def test_audio_shorter_than_min_samples_is_refused_with_a_sentence() -> None:
    import numpy as np

    from tritone_server.core.clips import frame_clip
    from tritone_server.errors import InvalidRequest

    c = config(window=0, hop=0)
    c["parameters"]["min_samples"] = {"string_value": "400"}
    spec = spec_from_config(c, "1")
    with pytest.raises(InvalidRequest, match="at least 400 samples"):
        frame_clip(spec, np.zeros(399, dtype=np.float32))
    assert frame_clip(spec, np.zeros(400, dtype=np.float32)).samples == 400
