"""Loading training data: audiofolders and CSVs, any container and rate, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from tritone_tools.evaluation.datasets import DatasetError, list_dataset
from tritone_tools.training.data import load_audio, load_dataset, split_off


def sine(freq: float, seconds: float, rate: int) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * rate)) / rate
    out: npt.NDArray[np.float32] = (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return out


def test_any_container_rate_and_channel_count_becomes_16k_mono(tmp_path: Path) -> None:
    stereo = np.stack([sine(440, 1.0, 44100), sine(440, 1.0, 44100)], axis=1)
    sf.write(tmp_path / "a.flac", stereo, 44100)
    sf.write(tmp_path / "b.ogg", sine(440, 0.5, 8000), 8000, format="OGG", subtype="VORBIS")
    sf.write(tmp_path / "c.wav", sine(440, 0.25, 16000), 16000, subtype="PCM_16")
    a = load_audio(tmp_path / "a.flac", 16000)
    b = load_audio(tmp_path / "b.ogg", 16000)
    c = load_audio(tmp_path / "c.wav", 16000)
    assert a.dtype == np.float32 and a.ndim == 1 and abs(len(a) - 16000) <= 1
    assert abs(len(b) - 8000) <= 1 and len(c) == 4000
    assert 0.35 < float(np.abs(a).max()) < 0.45


def make_folder(root: Path, counts: dict[str, int]) -> None:
    for i, (label, n) in enumerate(counts.items()):
        (root / label).mkdir(parents=True)
        for j in range(n):
            sf.write(root / label / f"{j}.wav", sine(300 + 100 * i, 0.2, 16000), 16000)


def test_audiofolder_lists_labels_from_folders_and_skips_hidden_files(tmp_path: Path) -> None:
    make_folder(tmp_path, {"dog": 2, "cat": 3})
    (tmp_path / "notes.txt").write_text("not a label")
    (tmp_path / "dog" / ".DS_Store").write_bytes(b"\0")
    data = load_dataset(tmp_path, 16000, progress=False)
    assert data.labels == ("cat", "dog")
    assert data.counts() == {"cat": 3, "dog": 2}
    assert [p.name for p in data.paths] == ["0.wav", "1.wav", "2.wav", "0.wav", "1.wav"]


def test_csv_with_header_and_relative_paths(tmp_path: Path) -> None:
    make_folder(tmp_path / "audio", {"a": 2, "b": 2})
    rows = ["path,label", "audio/a/0.wav,x", "audio/a/1.wav,x", "", "# a comment"]
    rows += [f"{tmp_path}/audio/b/0.wav,y", "audio/b/1.wav,y"]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    pairs = list_dataset(tmp_path / "data.csv")
    assert [label for _, label in pairs] == ["x", "x", "y", "y"]
    assert all(p.is_file() for p, _ in pairs)
    assert load_dataset(tmp_path / "data.csv", 16000, progress=False).labels == ("x", "y")
    (tmp_path / "bad.csv").write_text("audio/a/0.wav\n")
    with pytest.raises(DatasetError, match=r"bad\.csv:1: expected two columns"):
        list_dataset(tmp_path / "bad.csv")


def test_fewer_than_two_labels_is_refused(tmp_path: Path) -> None:
    make_folder(tmp_path, {"only": 3})
    with pytest.raises(DatasetError, match="at least 2 labels; the data has only"):
        load_dataset(tmp_path, 16000, progress=False)


def test_a_label_with_one_clip_is_named(tmp_path: Path) -> None:
    make_folder(tmp_path, {"a": 3, "b": 1})
    with pytest.raises(DatasetError, match=r"at least 2 clips.*'b' has 1"):
        load_dataset(tmp_path, 16000, progress=False)


def test_unreadable_files_are_all_named(tmp_path: Path) -> None:
    make_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "a" / "broken.wav").write_bytes(b"RIFF not really")
    (tmp_path / "b" / "empty.flac").write_bytes(b"")
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path, 16000, progress=False)
    message = str(info.value)
    assert "2 file(s) could not be read" in message
    assert str(tmp_path / "a" / "broken.wav") in message
    assert str(tmp_path / "b" / "empty.flac") in message


def test_missing_data_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="neither a folder"):
        list_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no clips"):
        list_dataset(tmp_path / "empty")


def test_split_off_removes_a_label_and_reindexes(tmp_path: Path) -> None:
    make_folder(tmp_path, {"alice": 2, "bob": 2, "unknown": 3})
    data = load_dataset(tmp_path, 16000, progress=False)
    kept, others = split_off(data, "unknown")
    assert kept.labels == ("alice", "bob") and len(others) == 3
    assert kept.targets.tolist() == [0, 0, 1, 1]
    assert split_off(kept, "unknown") == (kept, [])
