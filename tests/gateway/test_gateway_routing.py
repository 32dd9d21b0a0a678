"""Model resolution and access options of the gateway: aliases, cost-center profiles, count-tokens,
unauthenticated use on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spendgate.errors import ConfigError
from spendgate.settings import GatewaySettings

from gateway_env import running
from helpers import TLS

HELLO = [{"role": "user", "content": [{"text": "Which team spent most this week?"}]}]
APP_PROFILE = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/simnovalite1"


def test_alias_and_cost_center_profile(tmp_path: Path, tls: TLS, monkeypatch: Any) -> None:
    aliases = {
        "claude-sonnet": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "nova": "amazon.nova-lite-v1:0",
    }
    profiles = {"cc-4711/amazon.nova-lite-v1:0": APP_PROFILE}
    with running(tmp_path, tls, model_aliases=aliases, cost_center_profiles=profiles) as env:
        client = env.boto3(monkeypatch)
        client.converse(modelId="claude-sonnet", messages=HELLO)
        client.converse(modelId="nova", messages=HELLO)
        r = env.post(
            "/model/nova/converse", {"messages": HELLO}, headers={"X-Cost-Center": "cc-4711"}
        )
        assert r.status_code == 200, r.text
        newest, middle, oldest = env.events(3)
    assert (oldest.requested_model, oldest.model_id) == ("claude-sonnet", aliases["claude-sonnet"])
    assert oldest.routed_from == "claude-sonnet" and oldest.base_model.startswith("anthropic.")
    assert (middle.model_id, middle.cost_center) == ("amazon.nova-lite-v1:0", None)
    assert (newest.model_id, newest.cost_center) == (APP_PROFILE, "cc-4711")
    assert newest.inference_profile_arn == APP_PROFILE and newest.routed_from == "nova"
    assert not newest.unpriced and newest.cost_usd  # priced as the profile's model


def test_count_tokens_through_the_gateway(tmp_path: Path, tls: TLS, monkeypatch: Any) -> None:
    with running(tmp_path, tls) as env:
        client = env.boto3(monkeypatch)
        n = client.count_tokens(
            modelId="anthropic.claude-3-haiku-20240307-v1:0",
            input={"converse": {"messages": HELLO}},
        )["inputTokens"]
        (event,) = env.events(1)
    assert n == 11  # 32 characters -> 8 tokens, + 3 for the role
    assert event.operation == "CountTokens" and event.cost_usd == 0 and not event.unpriced


def test_unauthenticated_on_loopback_only(tmp_path: Path, tls: TLS) -> None:
    with running(tmp_path, tls, allow_unauthenticated=True) as env:
        r = env.post("/model/amazon.nova-lite-v1%3A0/converse", {"messages": HELLO}, key=None)
        assert r.status_code == 200, r.text
        (event,) = env.events(1)
        assert event.key_id is None
        wrong = env.post(
            "/model/amazon.nova-lite-v1%3A0/converse", {"messages": HELLO}, key="sg-bad"
        )
        assert wrong.status_code == 403  # a key that is sent must still be valid
    with pytest.raises(ConfigError, match="only allowed when bound to loopback"):
        GatewaySettings(host="0.0.0.0", allow_unauthenticated=True)
