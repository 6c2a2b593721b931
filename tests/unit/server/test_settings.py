from __future__ import annotations

from pathlib import Path

import pytest

from tritone_server.settings import Settings, load_settings
from tritone_server.triton.local import STOP_WORST_CASE_S


def test_defaults_without_flags_or_environment() -> None:
    assert load_settings([], {}) == Settings()


def test_environment_then_flags_win() -> None:
    env = {
        "TRITONE_PORT": "6000",
        "TRITONE_TRITON_URLS": "a:8001, b:8001",
        "TRITONE_HTTP_PORT": "off",
        "TRITONE_LOG_JSON": "true",
        "TRITONE_MAX_DURATION_S": "30",
    }
    settings = load_settings(["--port", "7000", "--model-repository", "/models"], env)
    assert settings.port == 7000
    assert settings.triton_urls == ("a:8001", "b:8001")
    assert settings.http_port is None
    assert settings.log_json is True
    assert settings.model_repository == Path("/models")
    assert settings.audio_limits.max_duration_s == 30.0


def test_repeated_triton_url_flags() -> None:
    settings = load_settings(["--triton-url", "x:1", "--triton-url", "y:2"], {})
    assert settings.triton_urls == ("x:1", "y:2")


def test_a_bad_value_is_refused() -> None:
    with pytest.raises(ValueError):
        load_settings([], {"TRITONE_PORT": "many"})


def test_transport_settings_and_their_environment_twins() -> None:
    env = {
        "TRITONE_TLS_CERT": "/tls/tls.crt",
        "TRITONE_TLS_KEY": "/tls/tls.key",
        "TRITONE_TLS_CLIENT_CA": "/tls/ca.crt",
        "TRITONE_TOKEN_FILE": "/tokens/tokens",
        "TRITONE_ADMIN_TOKEN_FILE": "/tokens/admin",
        "TRITONE_METRICS_PORT": "9090",
        "TRITONE_HEALTH_PORT": "8081",
    }
    settings = load_settings(["--metrics-port", "9191"], env)
    assert settings.tls_cert == Path("/tls/tls.crt")
    assert settings.tls_key == Path("/tls/tls.key")
    assert settings.tls_client_ca == Path("/tls/ca.crt")
    assert settings.token_file == Path("/tokens/tokens")
    assert settings.admin_token_file == Path("/tokens/admin")
    assert settings.metrics_port == 9191
    assert settings.health_port == 8081
    assert load_settings([], {"TRITONE_TOKEN_FILE": ""}).token_file is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--tls-cert", "/c.crt"],
        ["--tls-key", "/c.key"],
        ["--tls-client-ca", "/ca.crt"],
    ],
)
def test_incomplete_tls_settings_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        load_settings(argv, {})


README = Path(__file__).resolve().parents[3] / "README.md"
LIMIT_SETTINGS = (
    "max_streams",
    "max_unary_calls",
    "max_stream_s",
    "stream_idle_s",
    "config_timeout_s",
    "max_chunk_bytes",
    "max_queued_bytes",
    "stream_queue_chunks",
    "decode_queue",
    "decode_worker_memory_mb",
    "max_message_bytes",
)


@pytest.mark.parametrize("name", LIMIT_SETTINGS)
def test_readme_lists_each_limit_with_its_flag_variable_and_default(name: str) -> None:
    flag = "--" + name.replace("_", "-")
    row = next((line for line in README.read_text().splitlines() if f"`{flag}`" in line), None)
    assert row is not None, f"README's limits table has no row for {flag}"
    assert f"`TRITONE_{name.upper()}`" in row
    default = getattr(Settings(), name)
    expected = f"{default:g}" if isinstance(default, float) else str(default)
    assert row.rstrip(" |").rsplit("|", 1)[-1].strip() == expected


def test_limit_flags_and_variables_reach_the_settings() -> None:
    settings = load_settings(
        ["--max-streams", "7", "--stream-idle-s", "2.5"], {"TRITONE_MAX_CHUNK_BYTES": "4096"}
    )
    assert settings.max_streams == 7
    assert settings.stream_idle_s == 2.5
    assert settings.max_chunk_bytes == 4096


def test_default_shutdown_with_a_local_triton_fits_kubernetes_default_grace() -> None:
    """SIGTERM to exit: the drain, the calls' grace, then the local Triton's worst stop.
    Kubernetes kills the pod 30 s after SIGTERM unless the pod asks for more."""
    settings = Settings()
    worst = settings.drain_s + settings.grace_s + STOP_WORST_CASE_S
    assert worst <= 30.0 - 2.0, f"worst-case exit {worst} s leaves no margin in 30 s"


def test_discovery_and_connection_age_settings_and_their_twins() -> None:
    env = {
        "TRITONE_TRITON_URLS": "dns:///tritone-triton-headless:8001",
        "TRITONE_TRITON_RESOLVE_S": "5",
        "TRITONE_MAX_CONNECTION_AGE_S": "120",
    }
    settings = load_settings(["--max-connection-age-grace-s", "600"], env)
    assert settings.triton_urls == ("dns:///tritone-triton-headless:8001",)
    assert settings.triton_resolve_s == 5.0
    assert settings.max_connection_age_s == 120.0
    assert settings.max_connection_age_grace_s == 600.0
    # ageing must never cut a stream that is within its own length limit
    assert Settings().max_connection_age_grace_s >= Settings().max_stream_s


def test_an_unusable_triton_url_is_refused_with_a_sentence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        load_settings(["--triton-url", "dns://10.0.0.53/tritons:8001"], {})
    assert "three slashes" in capsys.readouterr().err
