"""boto3, unchanged except for two environment variables, through the gateway to the simulator."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from spendgate.settings import SimSettings

from gateway_env import Env, running
from helpers import TLS, bedrock_client

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-lite-v1:0"
HELLO = [{"role": "user", "content": [{"text": "Summarise the quarterly Bedrock bill."}]}]


def claude_code_body(text: str = "Refactor this function") -> str:
    """An Anthropic Messages body as Claude Code sends it on Bedrock."""
    return json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "anthropic_beta": ["claude-code-20250219"],
            "max_tokens": 512,
            "system": [{"type": "text", "text": "You are Claude Code."}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        }
    )


@pytest.fixture
def env(tmp_path: Path, tls: TLS) -> Iterator[Env]:
    with running(tmp_path, tls, inject_request_metadata=False) as e:
        yield e


def strip_volatile(doc: Any) -> Any:
    """Drop what differs between any two calls: request ids, latency, response metadata."""
    doc = {k: v for k, v in doc.items() if k not in ("ResponseMetadata", "metrics")}
    return doc


def test_converse_identical_to_direct_and_recorded(env: Env, monkeypatch: Any) -> None:
    direct = bedrock_client(env.sim_url).converse(modelId=NOVA, messages=HELLO)  # SigV4, no key
    client = env.boto3(monkeypatch)  # from here on boto3 finds the bearer key in the environment
    via = client.converse(modelId=NOVA, messages=HELLO)
    assert strip_volatile(via) == strip_volatile(direct)
    headers = via["ResponseMetadata"]["HTTPHeaders"]
    (event,) = env.events(1)
    assert event.status == "ok" and event.operation == "Converse"
    assert event.input_tokens == direct["usage"]["inputTokens"]
    assert event.output_tokens == direct["usage"]["outputTokens"]
    # Nova Lite in us-east-1: $0.06/M in, $0.24/M out
    expected = (
        Decimal(event.input_tokens) * Decimal("0.06")
        + Decimal(event.output_tokens) * Decimal("0.24")
    ) / 1_000_000
    assert event.cost_usd == expected
    assert Decimal(headers["x-spendgate-cost-usd"]) == expected
    assert event.request_id == via["ResponseMetadata"]["RequestId"]
    assert event.department == "research" and event.agent == "summariser"
    assert event.key_id == env.key_id and event.region == "us-east-1"
    assert event.prompt_hash and len(event.prompt_hash) == 64 and event.response_hash


def test_converse_stream_identical_and_recorded(env: Env, monkeypatch: Any) -> None:
    sim = bedrock_client(env.sim_url)
    direct = list(sim.converse_stream(modelId=SONNET, messages=HELLO)["stream"])
    client = env.boto3(monkeypatch)
    via = list(client.converse_stream(modelId=SONNET, messages=HELLO)["stream"])
    for event in (via[-1], direct[-1]):
        event["metadata"].pop("metrics")
    assert via == direct
    (event,) = env.events(1)
    usage = direct[-1]["metadata"]["usage"]
    assert (event.status, event.streamed, event.partial) == ("ok", True, False)
    assert (event.input_tokens, event.output_tokens) == (
        usage["inputTokens"],
        usage["outputTokens"],
    )
    # Sonnet 4.5 via us. profile: $3.30/M in, $16.50/M out
    assert (
        event.cost_usd
        == (
            Decimal(usage["inputTokens"]) * Decimal("3.30")
            + Decimal(usage["outputTokens"]) * Decimal("16.50")
        )
        / 1_000_000
    )
    assert event.ttfb_ms is not None and event.stop_reason == "end_turn"


def test_invoke_model_claude_code_body(env: Env, monkeypatch: Any) -> None:
    direct = bedrock_client(env.sim_url).invoke_model(modelId=SONNET, body=claude_code_body())
    client = env.boto3(monkeypatch)
    via = client.invoke_model(modelId=SONNET, body=claude_code_body())
    assert json.loads(via["body"].read()) == json.loads(direct["body"].read())
    (event,) = env.events(1)
    assert event.operation == "InvokeModel" and event.model_family == "anthropic"
    headers = direct["ResponseMetadata"]["HTTPHeaders"]
    assert event.input_tokens == int(headers["x-amzn-bedrock-input-token-count"])
    assert event.output_tokens == int(headers["x-amzn-bedrock-output-token-count"])


def test_invoke_stream_claude_code_body(env: Env, monkeypatch: Any) -> None:
    client = env.boto3(monkeypatch)
    r = client.invoke_model_with_response_stream(modelId=SONNET, body=claude_code_body())
    chunks = [json.loads(e["chunk"]["bytes"]) for e in r["body"]]
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    (event,) = env.events(1)
    assert event.operation == "InvokeModelWithResponseStream" and event.status == "ok"
    assert (event.input_tokens, event.output_tokens) == (
        metrics["inputTokenCount"],
        metrics["outputTokenCount"],
    )
    assert event.cost_usd and event.cost_usd > 0


def test_cache_tokens_priced_per_ttl(env: Env, monkeypatch: Any) -> None:
    client = env.boto3(monkeypatch)
    system = [
        {"text": "You are a careful analyst. " * 40},
        {"cachePoint": {"type": "default", "ttl": "1h"}},
    ]
    first = client.converse(modelId=SONNET, system=system, messages=HELLO)["usage"]
    second = client.converse(modelId=SONNET, system=system, messages=HELLO)["usage"]
    newest, oldest = env.events(2)
    assert oldest.cache_write_1h_tokens == first["cacheWriteInputTokens"] > 0
    assert (
        newest.cache_read_tokens == second["cacheReadInputTokens"] == oldest.cache_write_1h_tokens
    )
    assert (
        oldest.cost_usd
        == (
            Decimal(oldest.input_tokens) * Decimal("3.30")
            + Decimal(oldest.cache_write_1h_tokens) * Decimal("6.60")
            + Decimal(oldest.output_tokens) * Decimal("16.50")
        )
        / 1_000_000
    )
    assert len(oldest.prefix_hashes) == 1 and oldest.prefix_hashes == newest.prefix_hashes


def test_seed_call_with_requests_and_aws_headers(tmp_path: Path, tls: TLS) -> None:
    """The seed's call: requests, X-Aws-* credentials, attribution headers, /bedrock prefix."""
    with running(tmp_path, tls, credentials=lambda: None) as env:
        r = env.post(
            "/bedrock/model/amazon.nova-lite-v1:0/converse",
            {"messages": HELLO},
            headers={
                "X-Aws-Access-Key-Id": "AKIASPENDGATESIM0001",
                "X-Aws-Secret-Access-Key": "spendgate-sim-secret-access-key",
                "X-Aws-Region": "us-east-1",
                "X-Department": "finance",
                "X-Project": "forecast",
                "X-Agent": "planner",
                "X-User": "alice",
                "X-Tag-ticket": "FIN-42",
            },
        )
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["outputTokens"] > 0
        (event,) = env.events(1)
        assert (event.department, event.project, event.agent, event.user_id) == (
            "finance",
            "forecast",
            "planner",
            "alice",
        )
        assert event.tags == {"ticket": "FIN-42"}


def test_wrong_aws_secret_is_rejected_by_the_simulators_sigv4(tmp_path: Path, tls: TLS) -> None:
    with running(tmp_path, tls, credentials=lambda: None) as env:
        r = env.post(
            "/model/amazon.nova-lite-v1%3A0/converse",
            {"messages": HELLO},
            headers={
                "X-Aws-Access-Key-Id": "AKIASPENDGATESIM0001",
                "X-Aws-Secret-Access-Key": "wrong",
            },
        )
        assert r.status_code == 403
        assert r.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
        (event,) = env.events(1)
        assert event.status == "error" and event.error_type == "InvalidSignatureException"
        assert event.cost_usd == 0


def test_application_profile_arn_is_signed_and_priced(env: Env, monkeypatch: Any) -> None:
    client = env.boto3(monkeypatch)
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/simclaude001"
    usage = client.converse(modelId=arn, messages=HELLO)["usage"]
    (event,) = env.events(1)
    assert event.model_id == arn and event.inference_profile_arn == arn
    assert not event.unpriced, event.unpriced_reason
    assert (
        event.cost_usd
        == (
            Decimal(usage["inputTokens"]) * Decimal("3.30")
            + Decimal(usage["outputTokens"]) * Decimal("16.50")
        )
        / 1_000_000
    )


def test_metadata_reaches_bedrocks_invocation_logs(
    tmp_path: Path, tls: TLS, monkeypatch: Any
) -> None:
    logs = tmp_path / "logs"
    sim = SimSettings(log_requests=False, invocation_log_dir=logs)
    with running(tmp_path, tls, sim=sim) as env:
        client = env.boto3(monkeypatch)
        client.converse(modelId=NOVA, messages=HELLO, requestMetadata={"ticket": "OPS-7"})
        client.invoke_model(modelId=SONNET, body=claude_code_body())
        env.events(2)
    records = [
        json.loads(line)
        for f in logs.rglob("*.json.gz")
        for line in gzip.decompress(f.read_bytes()).splitlines()
    ]
    by_op = {r["operation"]: r["requestMetadata"] for r in records}
    assert by_op["Converse"] == {"department": "research", "agent": "summariser", "ticket": "OPS-7"}
    assert by_op["InvokeModel"] == {"department": "research", "agent": "summariser"}


def test_bare_claude_id_is_auto_prefixed(env: Env, monkeypatch: Any) -> None:
    client = env.boto3(monkeypatch)
    client.converse(modelId="anthropic.claude-sonnet-4-5-20250929-v1:0", messages=HELLO)
    (event,) = env.events(1)
    assert event.model_id == SONNET
    assert event.requested_model == event.routed_from == "anthropic.claude-sonnet-4-5-20250929-v1:0"
