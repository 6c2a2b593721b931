"""The DS-CNN / head comparison's pieces (recipes/speech_commands/compare.py): the
combination rules, the DS-CNN's windows and level normalisation, the silence clips."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from recipes.speech_commands import compare  # noqa: E402
from recipes.speech_commands.detection import FloatArray, stream_windows  # noqa: E402
from recipes.speech_commands.synthesize import LABELS  # noqa: E402


def _scores(top: str, p: float = 0.7) -> FloatArray:
    row = np.full(len(LABELS), (1.0 - p) / (len(LABELS) - 1), np.float32)
    row[LABELS.index(top)] = p
    return row[None, :]


@pytest.mark.parametrize("rule", compare.RULES)
def test_every_rule_gives_probabilities(rule: str) -> None:
    rng = np.random.default_rng(1)
    d = rng.dirichlet(np.ones(12), size=7).astype(np.float32)
    h = rng.dirichlet(np.ones(12), size=7).astype(np.float32)
    out = compare.combine(rule, d, h)
    assert out.shape == (7, 12)
    assert np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_agreement_keeps_a_command_only_when_both_models_say_it() -> None:
    same = compare.combine("agreement", _scores("yes"), _scores("yes"))
    assert LABELS[int(same.argmax())] == "yes"
    differ = compare.combine("agreement", _scores("yes"), _scores("no"))
    assert LABELS[int(differ.argmax())] == "unknown"
    assert differ[0, LABELS.index("yes")] == 0 and differ[0, LABELS.index("no")] == 0


def test_a_verifier_vetoes_commands_it_does_not_support() -> None:
    d, h = _scores("yes", 0.9), _scores("unknown", 0.99)
    vetoed = compare.combine("dscnn_verified_by_head", d, h)
    assert LABELS[int(vetoed.argmax())] == "unknown"
    kept = compare.combine("dscnn_verified_by_head", d, _scores("yes", 0.2))
    assert kept[0, LABELS.index("yes")] == d[0, LABELS.index("yes")]


def test_the_dscnn_windows_end_where_the_gateways_windows_end() -> None:
    x = np.arange(1, 30_001, dtype=np.float32)
    gateway = stream_windows(x)
    for pad in compare.PADS:
        w = compare.dscnn_windows(x, pad)
        assert w.shape == (len(gateway), compare.DSCNN_SAMPLES)
        assert np.array_equal(w[:, -16_000:], gateway)
    context = compare.dscnn_windows(x, "context")
    assert np.all(context[0, :320] == 0) and np.array_equal(context[1, :320], x[3680:4000])
    assert np.all(compare.dscnn_windows(x, "zeros")[:, :320] == 0)


def test_peak_normalisation_is_capped() -> None:
    quiet = np.full((1, 100), 1e-4, np.float32)
    loud = np.full((1, 100), 0.9, np.float32)
    assert np.allclose(compare.normalise(quiet, "peak"), 1e-3)
    assert np.allclose(compare.normalise(loud, "peak"), compare.PEAK_TARGET)
    assert compare.normalise(loud, "none") is loud


def test_silence_clips_are_seeded_by_split_and_quiet() -> None:
    a, b = compare.silence_clips("validation", 5), compare.silence_clips("evaluation", 5)
    again = compare.silence_clips("validation", 5)
    assert all(np.array_equal(x.audio, y.audio) for x, y in zip(a, again, strict=True))
    assert not np.array_equal(a[1].audio, b[1].audio)
    assert all(c.kind == "silence" and np.abs(c.audio).max() < 0.05 for c in a + b)


def test_conditions() -> None:
    x = (np.sin(np.arange(16_000) / 5) * 0.1).astype(np.float32)
    assert compare.condition_audio(x, "wideband") is x
    assert np.isclose(np.abs(compare.condition_audio(x, "loud")).max(), 0.99)
    assert np.isclose(np.abs(compare.condition_audio(x, "quiet")).max(), 0.1 * 10 ** (-1.5))
    assert compare.condition_audio(x, "telephone").shape[0] == pytest.approx(16_000, abs=2)


def test_the_cards_quote_the_comparison_files() -> None:
    import json

    from recipes.speech_commands.dscnn.card import card

    for name, path in compare.CARDS.items():
        extra = compare.MLTK_OWN if name == "speech-commands-dscnn" else ""
        assert compare.section(extra=extra) in path.read_text()
    parity = json.loads((compare.RESULTS / "dscnn_parity.json").read_text())
    assert card(parity) == compare.CARDS["speech-commands-dscnn"].read_text()


def test_a_section_is_replaced_not_repeated() -> None:
    card = "# m\n\n## What it does well and what it does not\n\nold\n\n## Lineage\n\nx\n"
    new = compare.SECTION + "\n\nnew\n"
    once = compare.replace_section(card, new)
    assert "old" not in once and once.count(compare.SECTION) == 1
    assert compare.replace_section(once, new) == once
    added = compare.replace_section("# m\n\n## Limits\n\ny\n", new)
    assert added.index(compare.SECTION) < added.index("## Limits")
