"""Cache points behave as on Bedrock: write once, read after, expire by TTL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config

from helpers import API_KEY, TLS, Clock, tracked

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SYSTEM_TEXT = "You are a meticulous assistant. " * 40  # 1,280 chars -> 320 tokens


def ask(client: Any, ttl: str | None = None, question: str = "What is 2+2?") -> dict[str, Any]:
    point: dict[str, Any] = {"type": "default"}
    if ttl:
        point["ttl"] = ttl
    r = client.converse(
        modelId=SONNET,
        system=[{"text": SYSTEM_TEXT}, {"cachePoint": point}],
        messages=[{"role": "user", "content": [{"text": question}]}],
    )
    return dict(r["usage"])


def test_first_call_writes_then_reads(client: Any) -> None:
    first = ask(client)
    assert first["cacheWriteInputTokens"] == 320 and first["cacheReadInputTokens"] == 0
    assert first["cacheDetails"] == [{"ttl": "5m", "inputTokens": 320}]
    second = ask(client, question="And 3+3?")
    assert second["cacheReadInputTokens"] == 320 and second["cacheWriteInputTokens"] == 0
    assert "cacheDetails" not in second
    # inputTokens excludes the cached prefix: "And 3+3?" = 2 tokens + 3 for the role
    assert second["inputTokens"] == 5
    assert second["totalTokens"] == 5 + 320 + second["outputTokens"]


@pytest.fixture
def key_client(sim_factory: Any, tls: TLS, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An API-key client over HTTPS: no SigV4 clock check, so the simulator's clock can move."""
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", API_KEY)
    return tracked(
        boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=sim_factory(https=True),
            verify=tls.cafile,
            config=Config(retries={"total_max_attempts": 1}),
        )
    )


def test_one_hour_ttl_outlives_five_minutes(key_client: Any, clock: Clock) -> None:
    client = key_client
    assert ask(client, "1h")["cacheDetails"] == [{"ttl": "1h", "inputTokens": 320}]
    assert ask(client, "5m")["cacheReadInputTokens"] == 320  # same prefix, still cached
    clock.offset = timedelta(minutes=30)
    assert ask(client, "1h")["cacheReadInputTokens"] == 320
    clock.offset = timedelta(hours=2)
    assert ask(client, "1h")["cacheWriteInputTokens"] == 320


def test_five_minute_entry_expires(key_client: Any, clock: Clock) -> None:
    client = key_client
    ask(client)
    clock.offset = timedelta(minutes=6)
    assert ask(client)["cacheWriteInputTokens"] == 320


def test_prefix_below_minimum_is_not_cached(client: Any) -> None:
    r = client.converse(
        modelId=SONNET,
        system=[{"text": "short"}, {"cachePoint": {"type": "default"}}],
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
    )
    assert r["usage"]["cacheWriteInputTokens"] == 0 and r["usage"]["cacheReadInputTokens"] == 0


def test_anthropic_cache_control_on_invoke(client: Any) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "system": [
            {
                "type": "text",
                "text": SYSTEM_TEXT,
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            }
        ],
        "messages": [{"role": "user", "content": "hi"}],
    }
    first = json.loads(client.invoke_model(modelId=SONNET, body=json.dumps(body))["body"].read())
    assert first["usage"]["cache_creation"]["ephemeral_1h_input_tokens"] == 320
    r = client.invoke_model(modelId=SONNET, body=json.dumps(body))
    second = json.loads(r["body"].read())
    assert second["usage"]["cache_read_input_tokens"] == 320
    headers = r["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-cache-read-input-token-count"] == "320"


def test_models_without_caching_ignore_cache_points(client: Any) -> None:
    r = client.converse(
        modelId="meta.llama3-1-8b-instruct-v1:0",
        system=[{"text": SYSTEM_TEXT}, {"cachePoint": {"type": "default"}}],
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
    )
    assert "cacheReadInputTokens" not in r["usage"]
    assert r["usage"]["inputTokens"] == 320 + 1 + 3
