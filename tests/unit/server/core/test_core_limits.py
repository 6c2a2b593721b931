"""Gateway limits: the counters that refuse one call too many, and stream limit sentences."""

from __future__ import annotations

import pytest

from tritone_server.core.limits import Admission, StreamLimits, setting_names
from tritone_server.errors import LimitExceeded


def test_admission_refuses_the_call_over_the_limit_and_names_the_setting() -> None:
    admission = Admission(2, what="streams", setting="max_streams")
    with admission.enter(), admission.enter():
        with (
            pytest.raises(LimitExceeded, match="--max-streams / TRITONE_MAX_STREAMS") as info,
            admission.enter(),
        ):
            pass
        assert info.value.limit == "max_streams"
        assert admission.active == 2
    assert admission.active == 0
    with admission.enter():  # room again once the others finished
        assert admission.active == 1


def test_a_failing_call_gives_its_place_back() -> None:
    admission = Admission(1, what="unary calls", setting="max_unary_calls")
    with pytest.raises(RuntimeError), admission.enter():
        raise RuntimeError("boom")
    assert admission.active == 0


def test_chunk_limit_sentence_names_size_limit_and_setting() -> None:
    limits = StreamLimits(max_chunk_bytes=1000, max_queued_bytes=4000)
    limits.check_chunk(1000)
    with pytest.raises(LimitExceeded) as info:
        limits.check_chunk(1001)
    assert "1001 bytes" in str(info.value) and "1000 bytes" in str(info.value)
    assert setting_names("max_chunk_bytes") in str(info.value)
    assert info.value.limit == "chunk_bytes"


@pytest.mark.parametrize(
    ("error", "setting"),
    [
        (StreamLimits().idle_error(), "stream_idle_s"),
        (StreamLimits().config_error(), "config_timeout_s"),
        (StreamLimits().duration_error(), "max_stream_s"),
    ],
)
def test_time_limit_sentences_name_their_setting(error: LimitExceeded, setting: str) -> None:
    assert setting_names(setting) in str(error)


def test_a_queue_smaller_than_one_chunk_is_refused() -> None:
    with pytest.raises(ValueError, match="max_queued_bytes"):
        StreamLimits(max_chunk_bytes=2000, max_queued_bytes=1000)
