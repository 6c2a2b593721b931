"""The TLS settings of the hop to Triton: what goes together, and what a CA file must hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.certs import TestCa
from tritone_server.settings import load_settings
from tritone_server.triton.tls import TritonTls


def test_the_settings_and_their_variables(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    settings = load_settings(
        ["--triton-url", "t:8001", "--triton-tls-ca", str(ca)],
        {"TRITONE_TRITON_TLS_SERVER_NAME": "tritone-triton-headless"},
    )
    assert settings.triton_tls_ca == ca
    assert settings.triton_tls_server_name == "tritone-triton-headless"
    assert load_settings([], {}).triton_tls_ca is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--triton-url", "t:8001", "--triton-tls-server-name", "x"],  # a name but no CA
        ["--triton-tls-ca", "ca.crt"],  # the local Triton is plaintext on loopback
    ],
)
def test_settings_that_cannot_work_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        load_settings(argv, {})


def test_a_ca_file_must_hold_a_certificate(tmp_path: Path) -> None:
    good, bad = tmp_path / "ca.crt", tmp_path / "key.pem"
    good.write_bytes(TestCa("unit-ca").pem)
    bad.write_text("not a certificate\n")
    tls = TritonTls.from_file(good, "tritone-triton-headless")
    assert tls.channel_args() == [("grpc.ssl_target_name_override", "tritone-triton-headless")]
    assert TritonTls.from_file(good).channel_args() == []
    with pytest.raises(ValueError, match="holds no PEM certificate"):
        TritonTls.from_file(bad)
