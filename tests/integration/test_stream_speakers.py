"""Who spoke, once per speech segment, through the real gateway and Triton.

Two real people enrolled with `tritone train` (speaker-embedding backbone): the voice actors
of the small and the big fish of Debian's Czech Fish Fillets dub (same language, same
recording set-up, so the model must tell voices apart, not channels). Their enrolment clips
are the first of recipes/evaluation/speaker_strangers.py's enrolment split; the stream is built from
their held-out clips (never seen by training), alternating, and one read sentence of the
LibriVox reader of pocketsphinx-testdata, whom nobody enrolled, with pauses of low room noise
between them. voice-activity gates the stream; the trained model and speaker-embedding answer
per segment. No segment may name the wrong person, the reader's must be ``unknown``, both
fish must be named (all turns but one: the model rejects some 14 % of enrolled clips, as the
README says), and each answer must be exactly what Classify / Embed give for the audio the
event says it heard. (A stranger recorded like the enrolled people, the Dutch dub's actors,
is accepted far more often: recipes/evaluation/speaker_strangers.json has those figures.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

import tritone
from recipes.evaluation import speaker_strangers as people
from support.gateway import REPO, RunningGateway, start_gateway
from support.recordings import LIBRIVOX, TESTDATA, read_pcm, recording_path, stream_pcm
from tritone_tools.training import cli
from tritone_tools.training.data import load_audio

pytestmark = pytest.mark.integration

RATE = 16_000
MODEL = "fish"
EMBEDDING = "speaker-embedding"
GATE = "voice-activity"
ENROLLED = ("cs-small", "cs-big")
ENROL_CLIPS = 40
STREAM_CLIP_S = 3.0  # held-out clips at least this long go into the stream
STRANGER = LIBRIVOX.format("0880")
PAUSE_S = 1.5
MIN_SEGMENT_S = 1.0  # shorter segments (a word between pauses) are not asserted on
Int16Array = npt.NDArray[np.int16]


def _clips(person: str) -> tuple[list[Path], list[Path]]:
    """(enrolment, held-out) clips of one fish, as the benchmark splits them."""
    language, size = person.split("-")
    clips = people.fillets_clips(language, f"font_{size}")
    if not clips:
        pytest.fail(f"no Fish Fillets clips: apt-get install {people.PACKAGES}")
    return people.split(clips, person)


def _s16(audio: npt.NDArray[np.float32]) -> Int16Array:
    out: Int16Array = np.clip(np.rint(audio * 32767), -32768, 32767).astype(np.int16)
    return out


@pytest.fixture(scope="module")
def fish_gateway(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningGateway, dict[str, list[Path]]]]:
    """A gateway serving a speaker model trained here on the two fish, and their held-out
    clips."""
    work = tmp_path_factory.mktemp("fish")
    repository = work / "models"
    repository.mkdir()
    for name in (EMBEDDING, GATE):
        (repository / name).symlink_to(REPO / "model_repository" / name)
    data = work / "data"
    held: dict[str, list[Path]] = {}
    for person in ENROLLED:
        enrol, rest = _clips(person)
        people._link(enrol[:ENROL_CLIPS], data / person)
        held[person] = rest
    # people nobody enrols calibrate the threshold too (the "cards" reader, as the benchmark)
    people._link(sorted((TESTDATA / "cards").glob("*.wav")), data / "unknown")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the backbone on a shared, busy CPU: far faster on one thread
    try:
        status = cli.main(
            [
                *(str(data), "--backbone", EMBEDDING, "--name", MODEL),
                *("--repository", str(repository), "--quiet", "--seed", "0"),
                *("--test-fraction", "0"),
            ]
        )
    finally:
        torch.set_num_threads(threads)
    assert status == 0
    with start_gateway("--model-repository", str(repository)) as gateway:
        yield gateway, held


def _conversation(
    held: dict[str, list[Path]],
) -> tuple[bytes, list[tuple[str, float, float]]]:
    """The two fish alternating (two held-out clips each), then the stranger, pauses of room
    noise around each; and who speaks where."""
    long_enough = {
        person: [p for p in clips if load_audio(p, RATE).shape[0] >= STREAM_CLIP_S * RATE][:2]
        for person, clips in held.items()
    }
    order = [(p, long_enough[p][i]) for i in range(2) for p in ENROLLED]
    rng = np.random.default_rng(0)

    def pause() -> Int16Array:
        noise: Int16Array = np.rint(rng.normal(0, 0.002 * 32767, round(PAUSE_S * RATE))).astype(
            np.int16
        )
        return noise

    parts, turns, at = [pause()], [], PAUSE_S
    speech = [(p, _s16(load_audio(path, RATE))) for p, path in order]
    speech.append(("unknown", np.frombuffer(read_pcm(recording_path(STRANGER)), "<i2")))
    for who, samples in speech:
        turns.append((who, at, at + samples.shape[0] / RATE))
        parts += [samples.astype(np.int16), pause()]
        at += samples.shape[0] / RATE + PAUSE_S
    return np.concatenate(parts).astype("<i2").tobytes(), turns


def _raw(pcm: bytes, start_s: float, end_s: float) -> tritone.RawPcm:
    lo, hi = round(start_s * RATE), round(end_s * RATE)
    return tritone.RawPcm(pcm[2 * lo : 2 * hi], RATE, tritone.PcmEncoding.S16LE)


async def test_each_segment_names_its_enrolled_speaker_and_a_stranger_is_unknown(
    fish_gateway: tuple[RunningGateway, dict[str, list[Path]]],
) -> None:
    gateway, held = fish_gateway
    pcm, turns = await asyncio.to_thread(_conversation, held)
    async with tritone.AsyncClient(gateway.target, timeout=120.0) as client:
        events = await stream_pcm(
            client,
            pcm,
            models=[MODEL, EMBEDDING],
            gate=GATE,
            per_segment=[MODEL, EMBEDDING],
            top_k=3,
        )
        answers = [e for e in events if isinstance(e, tritone.Utterance)]
        named = [a for a in answers if a.model == MODEL]
        pooled = [a for a in answers if a.model == EMBEDDING]
        finals = [
            (e.start_s, e.end_s) for e in events if isinstance(e, tritone.SpeechSegment) and e.final
        ]
        # one answer per segment from each model, with the segment's bounds
        for model_answers in (named, pooled):
            bounds = [x for a in model_answers for x in (a.start_s, a.end_s)]
            assert bounds == pytest.approx([x for span in finals for x in span])
        # who spoke, in the segments long enough to judge, turn by turn
        heard: dict[int, list[str]] = {}
        for answer in named:
            assert not answer.too_long and not answer.embedding
            turn = next(
                i for i, (_, s, e) in enumerate(turns) if s < answer.end_s and e > answer.start_s
            )
            if answer.end_s - answer.start_s >= MIN_SEGMENT_S:
                heard.setdefault(turn, []).append(answer.labels[0].label)
        assert sorted(heard) == list(range(len(turns))), (heard, turns)
        # never the wrong person: a turn's segments name its speaker or, when the model is
        # not sure enough, `unknown` (the threshold favours rejection); the stranger is never
        # taken for an enrolled person; all but one enrolled turn are named, both people
        for i, (who, _, _) in enumerate(turns):
            assert set(heard[i]) <= {who, "unknown"}, (i, who, heard[i])
        enrolled = [(i, who) for i, (who, _, _) in enumerate(turns) if who != "unknown"]
        named_turns = [who for i, who in enrolled if who in heard[i]]
        assert len(named_turns) >= len(enrolled) - 1, heard
        assert set(named_turns) == set(ENROLLED), heard

        # the answer is Classify's (Embed's) for the audio the event names: the segment
        # padded, pooled by the model itself as for any clip
        for answer in named:
            clip = await client.classify(
                _raw(pcm, answer.window_start_s, answer.window_end_s), model=MODEL, top_k=3
            )
            assert [x.label for x in clip.labels] == [x.label for x in answer.labels]
            assert [x.score for x in clip.labels] == pytest.approx(
                [x.score for x in answer.labels], abs=1e-4
            )
        for answer in pooled:
            assert answer.labels == () and len(answer.embedding) == 256
            assert np.linalg.norm(answer.embedding) == pytest.approx(1.0, abs=1e-5)
            embedded = await client.embed(
                _raw(pcm, answer.window_start_s, answer.window_end_s), model=EMBEDDING
            )
            assert answer.embedding == pytest.approx(embedded.vector, abs=1e-4)

    summary = events[-1]
    assert isinstance(summary, tritone.StreamSummary)
    assert summary.frames_received == len(pcm) // 2
    by_model = {m.model: m for m in summary.models}
    assert by_model[MODEL].segments == len(finals) and by_model[MODEL].windows == len(named)
    assert by_model[GATE].gate and by_model[MODEL].gated
