"""The neural-voice split of recipes/speech_commands/neural_voices.py: whole voices in one
split each, every Kokoro English voice placed, each split mixing accents and sexes, and the
Piper voice (licence unclear) kept to evaluation. Pure: nothing is fetched or synthesized."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from recipes.speech_commands import neural_voices as nv  # noqa: E402

# kokoro-js 1.2.1's English voices (package/voices/{af,am,bf,bm}_*.bin).
KOKORO_ENGLISH = {
    *(
        f"af_{n}"
        for n in [
            "alloy",
            "aoede",
            "bella",
            "heart",
            "jessica",
            "kore",
            "nicole",
            "nova",
            "river",
            "sarah",
            "sky",
        ]
    ),
    *(
        f"am_{n}"
        for n in ["adam", "echo", "eric", "fenrir", "liam", "michael", "onyx", "puck", "santa"]
    ),
    *(f"bf_{n}" for n in ["alice", "emma", "isabella", "lily"]),
    *(f"bm_{n}" for n in ["daniel", "fable", "george", "lewis"]),
}


def test_every_voice_is_in_exactly_one_split() -> None:
    placed = Counter(v for names in nv.SPLITS.values() for v in names)
    assert all(n == 1 for n in placed.values()), placed
    assert set(placed) == KOKORO_ENGLISH | {nv.PIPER_VOICE}


def test_piper_joe_is_for_evaluation_only() -> None:
    assert nv.split_of(nv.PIPER_VOICE) == "evaluation"
    assert all(not v.startswith("piper:") for v in nv.SPLITS["train"] + nv.SPLITS["validation"])


def test_each_split_mixes_accents_and_sexes_in_rough_proportion() -> None:
    for names in nv.SPLITS.values():
        assert {nv.family(v) for v in names} >= {"af", "am", "bf", "bm"}
    kokoro = {s: [v for v in names if nv.family(v) != "piper"] for s, names in nv.SPLITS.items()}
    total = len(KOKORO_ENGLISH)
    assert abs(len(kokoro["train"]) - total / 2) <= 1
    assert abs(len(kokoro["validation"]) - total / 4) <= 1
    assert abs(len(kokoro["evaluation"]) - total / 4) <= 1


def test_kokoro_phonemes_use_its_single_symbols() -> None:
    assert nv.kokoro_phonemes("ɹˈaɪt ɡˈoʊ stˈɑːp", british=False) == "ɹˈIt ɡˈO stˈɑp"  # noqa: RUF001
    assert nv.kokoro_phonemes("ɡ ˈəʊ stˈɒp dˈaʊn", british=True) == "ɡ ˈQ stˈɒp dˈWn"  # noqa: RUF001


def test_phrase_windows_hold_the_word_said_first_or_last() -> None:
    import numpy as np

    from recipes.speech_commands.neural_positives import LEAD, phrase_windows

    rate = nv.SAMPLE_RATE
    audio = np.zeros(2 * rate, dtype=np.float32)
    audio[:4000] = 1.0  # the word said first: its 0.25 s at the start
    audio[-4000:] = 2.0  # the word said last
    rng = np.random.default_rng(0)
    for window in phrase_windows(audio, True, rng, count=20):
        assert window.shape == (rate,)
        assert np.count_nonzero(window == 1.0) == 4000
        assert int(np.argmax(window != 0)) <= LEAD  # at most LEAD of quiet before the word
    for window in phrase_windows(audio, False, rng, count=20):
        assert np.count_nonzero(window == 2.0) == 4000
        assert int(np.argmax(window[::-1] != 0)) <= LEAD
