"""The speech-commands real-speech evaluation's pieces: stream windows as the gateway cuts
them, detection spans, intervals, the phone channel, the split, and the card / config."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from recipes.speech_commands import card, real_speech  # noqa: E402
from recipes.speech_commands.calibrate import count_spans  # noqa: E402
from recipes.speech_commands.detection import (  # noqa: E402
    OperatingPoint,
    binomial_interval,
    detections,
    poisson_interval,
    stream_window_starts,
)
from support.fake_backend import LevelsBackend, config  # noqa: E402
from tritone_server.audio.formats import PcmEncoding, PcmFormat  # noqa: E402
from tritone_server.core.inference import Inference  # noqa: E402
from tritone_server.core.models import spec_from_config  # noqa: E402
from tritone_server.core.streams import LiveStream, StreamOptions, WindowEvent  # noqa: E402


@pytest.mark.parametrize("samples", [30, 100, 101, 149, 150, 151, 420, 1000])
async def test_stream_windows_are_the_ones_a_live_stream_classifies(samples: int) -> None:
    c = config(window=100, hop=50)
    stream = LiveStream(
        spec_from_config(c, "1"),
        Inference(LevelsBackend([c])),
        PcmFormat(PcmEncoding.F32LE, 1000, 1),
        StreamOptions(),
    )
    events = await stream.feed(np.zeros(samples, dtype="<f4").tobytes())
    events += await stream.finish()
    starts = [round(e.start_s * 1000) for e in events if isinstance(e, WindowEvent)]
    assert stream_window_starts(samples, 100, 50) == starts


def test_detections_are_runs_at_or_above_each_labels_threshold() -> None:
    labels = ("a", "b")
    scores = np.array(
        [[0.9, 0.1], [0.95, 0.1], [0.2, 0.8], [0.9, 0.8], [0.1, 0.1]], dtype=np.float32
    )
    point = OperatingPoint({"a": 0.9, "b": 0.85})
    found = detections(scores, labels, point)
    assert [(k, a, b, round(p, 4)) for k, a, b, p in found] == [("a", 0, 1, 0.95), ("a", 3, 3, 0.9)]
    longer = detections(scores, labels, OperatingPoint({"a": 0.9}, min_windows=2))
    assert [(k, a, b) for k, a, b, _ in longer] == [("a", 0, 1)]
    assert count_spans(scores[:, 0], 0.9, 1) == 2 and count_spans(scores[:, 0], 0.9, 2) == 1


def test_intervals_are_exact() -> None:
    low, high = poisson_interval(0, 1.0)
    assert low == 0.0 and high == pytest.approx(3.689, abs=1e-3)  # the classic "rule of 3.7"
    low, high = poisson_interval(10, 2.0)
    assert low == pytest.approx(2.398, abs=1e-3) and high == pytest.approx(9.195, abs=1e-3)
    assert binomial_interval(10, 10)[1] == 1.0
    low, high = binomial_interval(5, 10)
    assert low == pytest.approx(0.1871, abs=1e-4) and high == pytest.approx(0.8129, abs=1e-4)


def test_the_phone_channel_is_8_khz_companded_and_band_limited() -> None:
    t = np.arange(16000) / 16000
    speech_band = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    above_band = (0.3 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    line = real_speech.telephone(speech_band)
    assert line.shape == (8000,) and line.dtype == np.float32
    assert np.sqrt(np.mean(line[500:-500] ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)
    assert np.sqrt(np.mean(real_speech.telephone(above_band)[500:-500] ** 2)) < 1e-3
    x = np.linspace(-1, 1, 4001).astype(np.float32)
    for codec in (real_speech.mu_law, real_speech.a_law):
        y = codec(x)
        assert len(np.unique(y)) <= 256  # 8-bit codes
        assert np.max(np.abs(y - x)) < 0.03


def test_command_words_are_whole_words() -> None:
    assert real_speech.command_words("No, možná máš pravdu.") == ("no",)
    assert real_speech.command_words("Going upstairs, nobody stops") == ()
    assert real_speech.command_words("turn LEFT then go") == ("left", "go")


def test_speakers_are_split_once_and_evaluation_is_the_default() -> None:
    line = real_speech.Line("fillets-nl", "fillets-nl:m", Path("x.ogg"), "")
    assert line.split == "train"
    assert real_speech.Line("fillets-cs", "fillets-cs:v", Path("x"), "").split == "validation"
    assert real_speech.Line("pocketsphinx", "ps-cards", Path("x"), "").split == "evaluation"
    splits = set(real_speech.SPLIT_OF_ACTOR.values())
    assert splits == {"train", "validation", "evaluation"}


def test_config_gets_the_operating_point_once() -> None:
    text = 'name: "m"\nparameters { key: "task" value: { string_value: "x" } }\n'
    once = card.set_operating_point(text, {"yes": 0.9}, 2)
    twice = card.set_operating_point(once, {"yes": 0.8}, 1)
    assert twice.count("detection_thresholds") == 1 and twice.count("detection_min_windows") == 1
    assert '{\\"yes\\": 0.8}' in twice and 'string_value: "1"' in twice


def test_the_cards_section_is_replaced_not_repeated() -> None:
    old = "# m\n\n## Real speech\n\nold figures\n\n## Limits\n\n- x\n"
    new = card.replace_section(old, "## Real speech\n\nnew figures\n")
    assert "old figures" not in new and new.count("## Real speech") == 1
    assert new.index("new figures") < new.index("## Limits")
    added = card.replace_section("# m\n\n## Limits\n", "## Real speech\n\nfigures\n")
    assert added.index("figures") < added.index("## Limits")
