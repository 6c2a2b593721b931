"""``load_balancing=``: the policy lands in the channel's service config, and only gRPC's
built-in policies are accepted (the calls reaching two gateways are in tests/integration)."""

from __future__ import annotations

import json

import pytest

import tritone
from tritone._config import channel_options


def _service_config(load_balancing: str | None) -> dict[str, object]:
    options = dict(
        channel_options(
            retries=3, tls=None, user_options=None, user_agent="ua", load_balancing=load_balancing
        )
    )
    config: dict[str, object] = json.loads(options["grpc.service_config"])
    return config


def test_round_robin_goes_into_the_service_config() -> None:
    config = _service_config("round_robin")
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["methodConfig"], "retries stay configured next to the policy"


def test_no_policy_leaves_grpcs_default() -> None:
    assert "loadBalancingConfig" not in _service_config(None)


@pytest.mark.parametrize("client_class", [tritone.AsyncClient, tritone.Client])
def test_unknown_policies_are_refused_at_construction(client_class: type) -> None:
    with pytest.raises(ValueError, match="load_balancing"):
        client_class("dns:///gateway:50051", load_balancing="least_busy")


def test_the_option_reaches_the_channel_options() -> None:
    client = tritone.AsyncClient("ipv4:127.0.0.1:1,127.0.0.1:2", load_balancing="round_robin")
    options = dict(client._options)
    assert json.loads(options["grpc.service_config"])["loadBalancingConfig"] == [
        {"round_robin": {}}
    ]
