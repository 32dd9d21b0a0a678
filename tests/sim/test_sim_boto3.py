"""The simulator through boto3's own bedrock-runtime client: real SigV4, real botocore parsing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from spendgate.sim.account import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY

from helpers import API_KEY, TLS, Clock, bedrock_client, tracked

NOVA = "amazon.nova-lite-v1:0"
SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
HELLO = [{"role": "user", "content": [{"text": "Say hello to the simulator, please."}]}]


def anthropic_body(text: str = "hi", max_tokens: int = 300, **extra: Any) -> str:
    return json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": text}],
            **extra,
        }
    )


def test_converse_returns_bedrock_shape(client: Any) -> None:
    r = client.converse(modelId=NOVA, messages=HELLO, inferenceConfig={"maxTokens": 500})
    usage = r["usage"]
    assert r["stopReason"] == "end_turn"
    text = r["output"]["message"]["content"][0]["text"]
    assert usage["outputTokens"] == -(-len(text) // 4) > 0
    # "Say hello to the simulator, please." = 35 chars -> 9 tokens, + 3 for the role
    assert usage["inputTokens"] == 12
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert r["ResponseMetadata"]["RequestId"]
    assert r["metrics"]["latencyMs"] >= 0


def test_converse_is_deterministic_and_honours_max_tokens(client: Any) -> None:
    a = client.converse(modelId=NOVA, messages=HELLO)
    b = client.converse(modelId=NOVA, messages=HELLO)
    assert a["output"] == b["output"] and a["usage"] == b["usage"]
    capped = client.converse(modelId=NOVA, messages=HELLO, inferenceConfig={"maxTokens": 3})
    assert capped["usage"]["outputTokens"] == 3
    assert capped["stopReason"] == "max_tokens"


def test_converse_stream_events_and_usage(client: Any) -> None:
    whole = client.converse(modelId=SONNET, messages=HELLO)
    r = client.converse_stream(modelId=SONNET, messages=HELLO)
    events = list(r["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    assert text == whole["output"]["message"]["content"][0]["text"]
    assert events[-1]["metadata"]["usage"] == whole["usage"]
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"


def test_invoke_model_anthropic_body_and_headers(client: Any) -> None:
    r = client.invoke_model(modelId=SONNET, body=anthropic_body())
    body = json.loads(r["body"].read())
    headers = r["ResponseMetadata"]["HTTPHeaders"]
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["content"][0]["type"] == "text"
    assert int(headers["x-amzn-bedrock-input-token-count"]) == body["usage"]["input_tokens"] == 4
    assert int(headers["x-amzn-bedrock-output-token-count"]) == body["usage"]["output_tokens"]
    assert r["contentType"] == "application/json"


def test_invoke_stream_anthropic_chunks(client: Any) -> None:
    whole = json.loads(client.invoke_model(modelId=SONNET, body=anthropic_body())["body"].read())
    r = client.invoke_model_with_response_stream(modelId=SONNET, body=anthropic_body())
    chunks = [json.loads(e["chunk"]["bytes"]) for e in r["body"]]
    assert [c["type"] for c in chunks[:2]] == ["message_start", "content_block_start"]
    assert chunks[-2]["type"] == "message_delta"
    assert chunks[-2]["usage"]["output_tokens"] == whole["usage"]["output_tokens"]
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["inputTokenCount"] == whole["usage"]["input_tokens"]
    assert metrics["outputTokenCount"] == whole["usage"]["output_tokens"]
    text = "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    assert text == whole["content"][0]["text"]


@pytest.mark.parametrize(
    ("model", "body", "usage_of"),
    [
        (
            NOVA,
            {"messages": [{"role": "user", "content": [{"text": "hello"}]}]},
            lambda b: b["usage"]["outputTokens"],
        ),
        (
            "us.meta.llama3-3-70b-instruct-v1:0",
            {"prompt": "hello", "max_gen_len": 50},
            lambda b: b["generation_token_count"],
        ),
        ("mistral.mistral-large-2402-v1:0", {"prompt": "hello", "max_tokens": 50}, None),
        (
            "amazon.titan-text-express-v1",
            {"inputText": "hello"},
            lambda b: b["results"][0]["tokenCount"],
        ),
        (
            "openai.gpt-oss-120b-1:0",
            {"messages": [{"role": "user", "content": "hello"}]},
            lambda b: b["usage"]["completion_tokens"],
        ),
    ],
)
def test_invoke_model_native_shapes(
    client: Any, model: str, body: dict[str, Any], usage_of: Any
) -> None:
    r = client.invoke_model(modelId=model, body=json.dumps(body))
    out = json.loads(r["body"].read())
    header = int(r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-output-token-count"])
    if usage_of is not None:
        assert usage_of(out) == header


def test_embeddings_report_input_tokens(client: Any) -> None:
    r = client.invoke_model(
        modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "twelve chars"})
    )
    out = json.loads(r["body"].read())
    assert out["inputTextTokenCount"] == 3 and len(out["embedding"]) == 1024
    with pytest.raises(ClientError, match="doesn't support the model"):
        client.converse(modelId="amazon.titan-embed-text-v2:0", messages=HELLO)


def test_count_tokens_matches_converse_input(client: Any) -> None:
    n = client.count_tokens(
        modelId="anthropic.claude-3-haiku-20240307-v1:0", input={"converse": {"messages": HELLO}}
    )["inputTokens"]
    used = client.converse(modelId=NOVA, messages=HELLO)["usage"]["inputTokens"]
    assert n == used == 12


def test_bearer_api_key_from_environment(
    sim_factory: Any, tls: TLS, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sim_factory(https=True)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", url)
    monkeypatch.setenv("AWS_CA_BUNDLE", tls.cafile)
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", API_KEY)
    config = Config(retries={"total_max_attempts": 1})
    c = tracked(boto3.client("bedrock-runtime", region_name="us-east-1", config=config))
    r = c.converse(modelId=NOVA, messages=HELLO)
    assert r["usage"]["outputTokens"] > 0
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "not-a-key")
    c = tracked(boto3.client("bedrock-runtime", region_name="us-east-1", config=config))
    with pytest.raises(c.exceptions.AccessDeniedException):
        c.converse(modelId=NOVA, messages=HELLO)


def test_wrong_secret_is_invalid_signature(sim_url: str) -> None:
    c = bedrock_client(sim_url, secret="not-the-secret")
    with pytest.raises(ClientError) as info:
        c.converse(modelId=NOVA, messages=HELLO)
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_access_key_is_unrecognized_client(sim_url: str) -> None:
    c = bedrock_client(sim_url, access_key="AKIAUNKNOWNKEY000000")
    with pytest.raises(ClientError) as info:
        c.converse(modelId=NOVA, messages=HELLO)
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_skewed_clock_is_signature_expired(sim_url: str, clock: Clock) -> None:
    clock.offset = timedelta(minutes=20)
    with pytest.raises(ClientError) as info:
        bedrock_client(sim_url).converse(modelId=NOVA, messages=HELLO)
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "Signature expired" in info.value.response["Error"]["Message"]


def test_tampered_body_fails_signature(sim_url: str) -> None:
    c = bedrock_client(sim_url)

    def tamper(request: Any, **_: Any) -> None:
        request.body = request.body.replace(b"hello", b"HELLO")

    c.meta.events.register_last("before-send.bedrock-runtime.Converse", tamper)
    with pytest.raises(ClientError, match="signature we calculated does not match"):
        c.converse(modelId=NOVA, messages=HELLO)


def test_profiles_arns_and_regions(client: Any, sim_url: str) -> None:
    arn = "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0"
    assert client.converse(modelId=arn, messages=HELLO)["usage"]["inputTokens"] == 12
    app = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/simclaude001"
    assert client.converse(modelId=app, messages=HELLO)["stopReason"] == "end_turn"
    with pytest.raises(client.exceptions.ValidationException, match="on-demand throughput"):
        client.converse(modelId="anthropic.claude-sonnet-4-5-20250929-v1:0", messages=HELLO)
    with pytest.raises(client.exceptions.ValidationException, match="model identifier is invalid"):
        client.converse(modelId="eu.anthropic.claude-sonnet-4-5-20250929-v1:0", messages=HELLO)
    eu = bedrock_client(sim_url, region="eu-west-1")
    assert eu.converse(modelId="eu.anthropic.claude-sonnet-4-5-20250929-v1:0", messages=HELLO)
    with pytest.raises(client.exceptions.ValidationException, match="model identifier is invalid"):
        client.converse(modelId="acme.unknown-model-v1:0", messages=HELLO)


def test_injected_throttling_is_the_modeled_exception_and_retried(sim_url: str) -> None:
    c = bedrock_client(sim_url, attempts=3)
    calls: list[int] = []
    c.meta.events.register("before-send.bedrock-runtime.Converse", lambda **_: calls.append(1))
    c.meta.events.register(
        "before-call.bedrock-runtime.Converse",
        lambda params, **_: params["headers"].__setitem__("X-Sim-Error", "throttling"),
    )
    with pytest.raises(c.exceptions.ThrottlingException):
        c.converse(modelId=NOVA, messages=HELLO)
    assert len(calls) == 3  # botocore retries throttling: proof it recognised the error


@pytest.mark.parametrize(
    ("kind", "exception"),
    [
        ("timeout", "ModelTimeoutException"),
        ("internal", "InternalServerException"),
        ("unavailable", "ServiceUnavailableException"),
        ("model-error", "ModelErrorException"),
    ],
)
def test_injected_errors_by_header(sim_url: str, kind: str, exception: str) -> None:
    c = bedrock_client(sim_url)
    c.meta.events.register(
        "before-call.bedrock-runtime.Converse",
        lambda params, **_: params["headers"].__setitem__("X-Sim-Error", kind),
    )
    with pytest.raises(getattr(c.exceptions, exception)):
        c.converse(modelId=NOVA, messages=HELLO)


def test_mid_stream_exception(sim_url: str) -> None:
    c = bedrock_client(sim_url)
    c.meta.events.register(
        "before-call.bedrock-runtime.ConverseStream",
        lambda params, **_: params["headers"].update(
            {"X-Sim-Error": "stream:throttling", "X-Sim-Error-After": "3"}
        ),
    )
    r = c.converse_stream(modelId=NOVA, messages=HELLO)
    seen = []
    with pytest.raises(EventStreamError) as info:
        for event in r["stream"]:
            seen.append(event)
    assert len(seen) == 3
    assert info.value.response["Error"]["Code"] == "throttlingException"


def test_error_rate_one_fails_everything(sim_factory: Any) -> None:
    c = bedrock_client(sim_factory(error_rate=1.0))
    for _ in range(5):
        with pytest.raises(ClientError) as info:
            c.converse(modelId=NOVA, messages=HELLO)
        code = info.value.response["Error"]["Code"]
        assert code in {
            "ThrottlingException",
            "InternalServerException",
            "ServiceUnavailableException",
            "ModelTimeoutException",
        }


def test_get_inference_profile_via_boto3_control_plane(sim_url: str) -> None:
    bedrock = tracked(
        boto3.client(
            "bedrock",
            region_name="us-east-1",
            endpoint_url=sim_url,
            aws_access_key_id=DEFAULT_ACCESS_KEY_ID,
            aws_secret_access_key=DEFAULT_SECRET_ACCESS_KEY,
        )
    )
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/simclaude001"
    profile = bedrock.get_inference_profile(inferenceProfileIdentifier=arn)
    assert profile["type"] == "APPLICATION" and profile["status"] == "ACTIVE"
    models = [m["modelArn"] for m in profile["models"]]
    assert all(
        m.endswith("foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0") for m in models
    )
    assert (
        bedrock.get_inference_profile(inferenceProfileIdentifier="simclaude001")[
            "inferenceProfileArn"
        ]
        == arn
    )
    listed = bedrock.list_inference_profiles(typeEquals="APPLICATION")["inferenceProfileSummaries"]
    assert {p["inferenceProfileArn"] for p in listed} >= {arn}
    with pytest.raises(bedrock.exceptions.ResourceNotFoundException):
        bedrock.get_inference_profile(inferenceProfileIdentifier="nope12345678")
