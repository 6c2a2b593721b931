"""The `tritone` command against the fake server, through `main([...])`."""

from __future__ import annotations

import asyncio
import json
import sys
import types
import wave
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tritone import cli

if TYPE_CHECKING:
    from support.fake_gateway import FakeServer


def write_wav(
    path: Path, frames: int, *, rate: int = 16000, channels: int = 1, width: int = 2
) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(16000)
        wav.writeframes(b"\x01" * frames * channels * width)


async def run(*argv: str) -> int:
    # main() runs its own event loop; the fake server lives on this one.
    return await asyncio.to_thread(cli.main, list(argv))


async def test_classify_prints_labels(
    fake_server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    write_wav(a, 100)
    write_wav(b, 200)
    assert (
        await run("classify", str(a), str(b), "--target", fake_server.target, "--top-k", "2") == 0
    )
    out = capsys.readouterr().out
    assert "a.wav" in out and "b.wav" in out
    assert "0.7500  dog" in out and "0.1250  cat" in out and "bird" not in out
    assert fake_server.servicer.classify_requests[-1].audio.encoded == b.read_bytes()


async def test_classify_json(
    fake_server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = tmp_path / "c.wav"
    write_wav(clip, 100)
    code = await run(
        "classify", str(clip), "--json", "--model", "m9", "--target", fake_server.target
    )
    assert code == 0
    (line,) = capsys.readouterr().out.splitlines()
    row = json.loads(line)
    assert row["file"] == str(clip) and row["model"] == "m9"
    assert row["labels"][0] == {"label": "dog", "score": 0.75}


async def test_models_json_uses_the_target_from_the_environment(
    fake_server: FakeServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRITONE_TARGET", fake_server.target)
    assert await run("models", "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == ["speech", "vad"]
    assert rows[1]["stateful"] is True and rows[0]["labels"] == ["dog", "cat", "bird"]
    assert await run("models", "--target", fake_server.target) == 0
    assert "speech  v7" in capsys.readouterr().out


async def test_stream_prints_events_then_the_summary(
    fake_server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = tmp_path / "s.wav"
    write_wav(clip, 8000, channels=2)  # 0.5 s: 5 chunks of 100 ms
    argv = ["stream", str(clip), "--no-realtime", "--json", "--model", "cli-stream"]
    assert await run(*argv, "--threshold", "0.5", "--target", fake_server.target) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["type"] for r in rows] == ["window", "detection"] + ["window"] * 4 + ["summary"]
    assert rows[-1]["frames_received"] == 8000 and rows[-1]["bytes_received"] == 32000
    config = fake_server.servicer.streams["cli-stream"].config
    assert (config.format.sample_rate, config.format.channels) == (16000, 2)
    assert config.detection_threshold == 0.5


async def test_stream_text_output(
    fake_server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = tmp_path / "t.wav"
    write_wav(clip, 1600)
    argv = ["stream", str(clip), "--no-realtime", "--chunk-ms", "50", "--model", "cli-text"]
    assert await run(*argv, "--target", fake_server.target) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("window     0") and out[-1].startswith("summary cli-text 7")
    assert fake_server.servicer.streams["cli-text"].messages == 2


async def test_stream_of_a_non_16_bit_file_without_soundfile(
    fake_server: FakeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clip = tmp_path / "u8.wav"
    write_wav(clip, 100, width=1)
    monkeypatch.setitem(sys.modules, "soundfile", None)
    assert await run("stream", str(clip), "--no-realtime", "--target", fake_server.target) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "16-bit PCM WAV" in err and "soundfile" in err


async def test_server_errors_print_code_and_details(
    fake_server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = tmp_path / "e.wav"
    write_wav(clip, 10)
    argv = ["classify", str(clip), "--model", "abort:NOT_FOUND", "--target", fake_server.target]
    assert await run(*argv) == 1
    assert capsys.readouterr().err == "error: NOT_FOUND: the fake refused with NOT_FOUND\n"
    argv = ["classify", str(tmp_path / "missing.wav"), "--target", fake_server.target]
    assert await run(*argv) == 1
    assert "missing.wav" in capsys.readouterr().err


def test_serve_passes_every_argument_through(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 7

    app = types.ModuleType("tritone_server.app")
    app.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tritone_server.app", app)
    assert cli.main(["serve", "--port", "1", "--help", "x"]) == 7
    assert seen == [["--port", "1", "--help", "x"]]


def test_serve_without_the_server_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tritone_server.app", None)
    assert cli.main(["serve"]) == 2
    assert "pip install 'tritone[server]'" in capsys.readouterr().err


def test_help_lists_the_commands_other_packages_add(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in ("serve", "train", "import-hf", "evaluate"):
        assert f"    {name}" in out, name
    assert "needs tritone[train]" in out and "needs tritone[hf]" in out


def added_commands(monkeypatch: pytest.MonkeyPatch, *values: tuple[str, str]) -> None:
    """Make ``tritone.commands`` hold exactly these (name, value) entry points."""
    found = [EntryPoint(name, value, cli.COMMANDS_GROUP) for name, value in values]
    monkeypatch.setattr(
        cli, "entry_points", lambda group: found if group == cli.COMMANDS_GROUP else []
    )


def test_a_command_whose_package_or_extra_is_missing_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wings = types.ModuleType("tritone_wings_command")
    wings.help, wings.extra = "fly", "wings"  # type: ignore[attr-defined]

    def load() -> object:
        import tritone_wings_heavy  # type: ignore[import-not-found]  # noqa: F401

        raise AssertionError("tritone_wings_heavy is not installed")

    wings.load = load  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tritone_wings_command", wings)
    added_commands(monkeypatch, ("fly", "tritone_wings_command"), ("swim", "tritone_nowhere.swim"))
    assert cli.main(["fly", "--high"]) == 2
    assert capsys.readouterr().err == (
        "tritone fly needs the [wings] extra: pip install 'tritone[wings]' "
        "(tritone_wings_heavy is missing)\n"
    )
    assert cli.main(["swim"]) == 2
    assert capsys.readouterr().err == (
        "tritone swim needs tritone_nowhere, which is not installed: pip install tritone\n"
    )


def test_an_added_command_cannot_replace_the_sdks_own(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    added_commands(monkeypatch, ("models", "tritone_nowhere.command"))
    assert cli.main(["models", "--target", "127.0.0.1:1", "--json"]) == 1  # the SDK's: no gateway
    assert "tritone_nowhere" not in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "classify" in capsys.readouterr().err
