"""Usage extraction: real-shaped bodies per family, encoded streams, botocore cross-checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer
from botocore.parsers import EventStreamJSONParser
from botocore.session import get_session

from spendgate.bedrock.errors import exception_frame
from spendgate.bedrock.eventstream import Decoder, chunk_bytes, encode_chunk, encode_event
from spendgate.bedrock.usage import (
    Extracted,
    StreamUsage,
    Usage,
    body_family,
    from_converse,
    from_invoke,
)
from spendgate.errors import AwsError, EventStreamError

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "aws"
METRICS = "amazon-bedrock-invocationMetrics"


def log_record(index: int) -> dict[str, Any]:
    lines = (SAMPLES / "invocation-log-examples.jsonl").read_text().splitlines()
    record: dict[str, Any] = json.loads(lines[index])
    return record


def vector(name: str) -> bytes:
    vectors = json.loads((SAMPLES / "eventstream-test-vectors.json").read_text())["vectors"]
    return bytes.fromhex(next(v for v in vectors if v["name"] == name)["hex"])


def meter(operation: str, data: bytes, family: str | None = None) -> StreamUsage:
    usage = StreamUsage(operation, family)
    for frame in Decoder().feed(data):
        usage.observe(frame)
    return usage


def chunks(*docs: dict[str, Any]) -> bytes:
    return b"".join(encode_chunk(doc, padding="abc") for doc in docs)


def converse_usage(usage: dict[str, Any]) -> Usage:
    """Bedrock's stated Converse usage, bucket by bucket (cacheDetails, else all writes 5m)."""
    by_ttl = {d["ttl"]: d["inputTokens"] for d in usage.get("cacheDetails", [])}
    writes = usage.get("cacheWriteInputTokens", 0)
    return Usage(
        input_tokens=usage["inputTokens"],
        output_tokens=usage["outputTokens"],
        cache_read_tokens=usage.get("cacheReadInputTokens", 0),
        cache_write_5m_tokens=writes - by_ttl.get("1h", 0),
        cache_write_1h_tokens=by_ttl.get("1h", 0),
    )


# --- body families ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", "anthropic"),
        ("us.anthropic.claude-sonnet-4-6", "anthropic"),
        ("global.anthropic.claude-opus-4-6-v1", "anthropic"),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            "anthropic",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.amazon.nova-pro-v1:0",
            "nova",
        ),
        ("amazon.nova-2-lite-v1:0", "nova"),
        ("amazon.titan-text-express-v1", "titan"),
        ("amazon.titan-embed-text-v2:0", "titan"),
        ("amazon.rerank-v1:0", "other"),
        ("us.meta.llama3-2-90b-instruct-v1:0", "llama"),
        ("mistral.mistral-large-2407-v1:0", "mistral"),
        ("cohere.command-r-plus-v1:0", "cohere"),
        ("ai21.jamba-1-5-large-v1:0", "ai21"),
        ("us.deepseek.r1-v1:0", "deepseek"),
        ("openai.gpt-oss-120b-1:0", "openai"),
        ("qwen.qwen3-32b-v1:0", "qwen"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/hkqiiam51emk",
            "other",
        ),
        ("stability.sd3-large-v1:0", "other"),
        ("", "other"),
    ],
)
def test_body_family(model: str, family: str) -> None:
    assert body_family(model) == family


# --- Converse -----------------------------------------------------------------------------------


def test_converse_sample_with_cache_write() -> None:
    body = log_record(1)["output"]["outputBodyJson"]
    extracted = from_converse(body)
    assert extracted == Extracted(
        converse_usage(body["usage"]), body["stopReason"], body["metrics"]["latencyMs"]
    )
    assert extracted.usage is not None
    assert extracted.usage.total_tokens == body["usage"]["totalTokens"]
    assert extracted.usage.cache_write_tokens == body["usage"]["cacheWriteInputTokens"]


def test_converse_cache_details_split_and_uncovered_writes_count_as_5m() -> None:
    usage = {
        "inputTokens": 10,
        "outputTokens": 5,
        "totalTokens": 315,
        "cacheReadInputTokens": 0,
        "cacheWriteInputTokens": 300,
        "cacheDetails": [{"ttl": "1h", "inputTokens": 100}, {"ttl": "5m", "inputTokens": 150}],
    }
    extracted = from_converse({"usage": usage, "stopReason": "end_turn"})
    assert extracted.usage == Usage(10, 5, 0, cache_write_5m_tokens=200, cache_write_1h_tokens=100)
    assert extracted.usage.total_tokens == usage["totalTokens"]
    assert extracted.latency_ms is None


@pytest.mark.parametrize(
    "body", [{}, {"usage": {}}, {"usage": {"inputTokens": "3"}}, {"usage": []}]
)
def test_converse_without_usage_is_unknown(body: dict[str, Any]) -> None:
    assert from_converse(body).usage is None


# --- InvokeModel --------------------------------------------------------------------------------

ANTHROPIC_BODY = {
    "id": "msg_bdrk_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 3,
        "cache_creation_input_tokens": 3000,
        "cache_read_input_tokens": 700,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
        "output_tokens": 12,
    },
}
HEADERS = {
    "X-Amzn-Bedrock-Input-Token-Count": "3",
    "X-Amzn-Bedrock-Output-Token-Count": "12",
    "X-Amzn-Bedrock-Cache-Read-Input-Token-Count": "700",
    "X-Amzn-Bedrock-Cache-Write-Input-Token-Count": "3000",
    "X-Amzn-Bedrock-Invocation-Latency": "926",
}


def test_invoke_anthropic_prefers_the_body_ttl_split_over_the_combined_header() -> None:
    extracted = from_invoke("anthropic", HEADERS, json.dumps(ANTHROPIC_BODY).encode())
    assert extracted == Extracted(Usage(3, 12, 700, 1000, 2000), "end_turn", 926)


def test_invoke_headers_win_over_body_counts_in_any_case() -> None:
    headers = {k.lower(): v for k, v in HEADERS.items()} | {
        "x-amzn-bedrock-output-token-count": "13"
    }
    body = {**ANTHROPIC_BODY, "usage": {"input_tokens": 3, "output_tokens": 12}}
    extracted = from_invoke("anthropic", headers, json.dumps(body).encode())
    assert extracted.usage == Usage(3, 13, 700, cache_write_5m_tokens=3000)


def test_invoke_headers_alone_and_non_json_body() -> None:
    extracted = from_invoke(
        "deepseek",
        {"X-Amzn-Bedrock-Input-Token-Count": "14", "X-Amzn-Bedrock-Output-Token-Count": "9"},
        b"\x89PNG",
    )
    assert extracted == Extracted(Usage(14, 9))


@pytest.mark.parametrize(
    ("family", "body", "usage", "stop"),
    [
        (
            "nova",
            {
                "output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}},
                "stopReason": "end_turn",
                "usage": {
                    "inputTokens": 9,
                    "outputTokens": 191,
                    "totalTokens": 300,
                    "cacheReadInputTokenCount": 60,
                    "cacheWriteInputTokenCount": 40,
                },
            },
            Usage(9, 191, 60, 40),
            "end_turn",
        ),
        (
            "llama",
            {
                "generation": "Hi",
                "prompt_token_count": 21,
                "generation_token_count": 64,
                "stop_reason": "length",
            },
            Usage(21, 64),
            "length",
        ),
        (
            "titan",
            {
                "inputTextTokenCount": 5,
                "results": [{"tokenCount": 17, "outputText": "Hi", "completionReason": "FINISH"}],
            },
            Usage(5, 17),
            "FINISH",
        ),
        ("titan", {"embedding": [0.1, 0.2], "inputTextTokenCount": 8}, Usage(8), None),
        (
            "mistral",
            {
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Hi"},
                        "stop_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 30, "completion_tokens": 4, "total_tokens": 34},
            },
            Usage(30, 4),
            "stop",
        ),
        (
            "openai",
            {
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"content": "Hi"}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": 1200,
                    "completion_tokens": 50,
                    "total_tokens": 1250,
                    "prompt_tokens_details": {"cached_tokens": 1024},
                },
            },
            Usage(176, 50, 1024),
            "stop",
        ),
        (
            "cohere",
            {
                "text": "Hi",
                "finish_reason": "COMPLETE",
                "meta": {"billed_units": {"input_tokens": 11, "output_tokens": 2}},
            },
            Usage(11, 2),
            "COMPLETE",
        ),
        (
            "other",
            {
                "content": [],
                "stop_reason": "max_tokens",
                "usage": {"input_tokens": 4, "output_tokens": 8},
            },
            Usage(4, 8),
            "max_tokens",
        ),
    ],
)
def test_invoke_body_families(
    family: str, body: dict[str, Any], usage: Usage, stop: str | None
) -> None:
    assert from_invoke(family, {}, json.dumps(body).encode()) == Extracted(usage, stop)


def test_invoke_openai_prompt_tokens_include_cache_so_total_is_preserved() -> None:
    body = {
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 50,
            "total_tokens": 1250,
            "prompt_tokens_details": {"cached_tokens": 1024},
        }
    }
    usage = from_invoke("qwen", {}, json.dumps(body).encode()).usage
    assert usage is not None
    assert usage.total_tokens == body["usage"]["total_tokens"]


def test_ai21_chunk_usage_from_real_vector() -> None:
    (frame,) = Decoder().feed(vector("real_invoke_with_response_stream_chunk_ai21_v2"))
    model_json = chunk_bytes(frame)
    stated = json.loads(model_json)["usage"]
    extracted = from_invoke("ai21", {}, model_json)
    assert extracted.usage == Usage(stated["prompt_tokens"], stated["completion_tokens"])


@pytest.mark.parametrize(
    ("family", "body"),
    [
        ("anthropic", {"content": [], "stop_reason": "end_turn"}),
        ("cohere", {"generations": [{"text": "Hi", "finish_reason": "COMPLETE"}]}),
        ("deepseek", {"choices": [{"text": "Hi", "stop_reason": "stop"}]}),
        ("other", {"images": ["..."]}),
        ("llama", {"generation": "Hi", "prompt_token_count": None, "generation_token_count": True}),
        ("nova", []),
    ],
)
def test_unknown_shape_without_headers_is_unknown_not_zero(family: str, body: Any) -> None:
    extracted = from_invoke(
        family, {"X-Amzn-Bedrock-Invocation-Latency": "12"}, json.dumps(body).encode()
    )
    assert extracted.usage is None
    assert extracted.latency_ms == 12


# --- ConverseStream -----------------------------------------------------------------------------


def test_converse_stream_vector() -> None:
    usage = meter("converse-stream", vector("synthetic_converse_stream_happy_path"))
    stated = log_record(1)["output"]["outputBodyJson"]  # the vector was modelled on this record
    assert usage.complete
    assert usage.result == Extracted(converse_usage(stated["usage"]), "end_turn", 7460)
    assert usage.output_text_chars == len("Hello")
    assert usage.error is None


def converse_stream(usage: dict[str, Any], *, text: str = "Hello, wörld") -> bytes:
    return b"".join(
        [
            encode_event("messageStart", {"role": "assistant", "p": "abcd"}),
            encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}}),
            encode_event("contentBlockStop", {"contentBlockIndex": 0}),
            encode_event("messageStop", {"stopReason": "max_tokens"}),
            encode_event("metadata", {"usage": usage, "metrics": {"latencyMs": 321}, "p": "ab"}),
        ]
    )


def test_botocore_reads_the_same_converse_stream_usage() -> None:
    stated = {
        "inputTokens": 12,
        "outputTokens": 34,
        "totalTokens": 2046,
        "cacheReadInputTokens": 1000,
        "cacheWriteInputTokens": 1000,
        "cacheDetails": [{"ttl": "1h", "inputTokens": 600}, {"ttl": "5m", "inputTokens": 400}],
    }
    data = converse_stream(stated)
    shape = (
        get_session()
        .get_service_model("bedrock-runtime")
        .operation_model("ConverseStream")
        .output_shape.members["stream"]
    )
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    parsed = [EventStreamJSONParser().parse(m.to_response_dict(), shape) for m in buffer]
    metadata = parsed[-1]["metadata"]
    ours = meter("converse-stream", data)
    assert ours.result == Extracted(
        converse_usage(metadata["usage"]),
        parsed[-2]["messageStop"]["stopReason"],
        metadata["metrics"]["latencyMs"],
    )
    assert ours.result.usage is not None
    assert ours.result.usage.total_tokens == metadata["usage"]["totalTokens"]
    assert ours.output_text_chars == len(parsed[1]["contentBlockDelta"]["delta"]["text"])


def test_converse_stream_interrupted_before_metadata() -> None:
    data = converse_stream({"inputTokens": 1, "outputTokens": 2, "totalTokens": 3})
    frames = Decoder().feed(data)[:-1]
    usage = StreamUsage("converse-stream")
    for frame in frames:
        usage.observe(frame)
    assert not usage.complete
    assert usage.result == Extracted(None, "max_tokens")
    assert usage.partial_usage is None


def test_converse_stream_in_stream_exception() -> None:
    data = vector("synthetic_converse_stream_in_stream_exception")
    usage = meter("converse-stream", data)
    assert usage.error is not None
    assert usage.error.code == "ThrottlingException"
    assert usage.error.status == 429
    assert not usage.complete
    assert usage.result.usage is None


# --- InvokeModelWithResponseStream --------------------------------------------------------------


def anthropic_stream(*, metrics: dict[str, int] | None, stop_after: int | None = None) -> bytes:
    docs: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_bdrk_01",
                "type": "message",
                "role": "assistant",
                "content": [],
                "usage": ANTHROPIC_BODY["usage"] | {"output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo!"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 40},
        },
        {"type": "message_stop"} | ({METRICS: metrics} if metrics else {}),
    ]
    return chunks(*docs[:stop_after])


def test_anthropic_stream_vector_uses_invocation_metrics() -> None:
    usage = meter(
        "invoke-with-response-stream",
        vector("synthetic_invoke_with_response_stream_anthropic"),
        "anthropic",
    )
    frames = Decoder().feed(vector("synthetic_invoke_with_response_stream_anthropic"))
    metrics = json.loads(chunk_bytes(frames[-1]))[METRICS]
    assert usage.complete
    assert usage.result == Extracted(
        Usage(
            metrics["inputTokenCount"],
            metrics["outputTokenCount"],
            metrics["cacheReadInputTokenCount"],
            metrics["cacheWriteInputTokenCount"],
        ),
        "end_turn",
        metrics["invocationLatency"],
    )
    assert usage.output_text_chars == len("Hi")


def test_anthropic_stream_metrics_win_but_the_ttl_split_comes_from_message_start() -> None:
    metrics = {
        "inputTokenCount": 3,
        "outputTokenCount": 41,
        "invocationLatency": 1405,
        "firstByteLatency": 985,
        "cacheReadInputTokenCount": 700,
        "cacheWriteInputTokenCount": 3000,
    }
    usage = meter("invoke-with-response-stream", anthropic_stream(metrics=metrics), "anthropic")
    assert usage.result == Extracted(Usage(3, 41, 700, 1000, 2000), "end_turn", 1405)
    assert usage.output_text_chars == len("Hello!")


def test_anthropic_stream_without_metrics_accumulates_message_usage() -> None:
    usage = meter("invoke-with-response-stream", anthropic_stream(metrics=None), None)
    assert not usage.complete
    assert usage.result == Extracted(Usage(3, 40, 700, 1000, 2000), "end_turn")


def test_interrupted_anthropic_stream_has_partial_usage_only() -> None:
    usage = meter(
        "invoke-with-response-stream", anthropic_stream(metrics=None, stop_after=3), "anthropic"
    )
    assert not usage.complete
    assert usage.result.usage is None
    assert usage.partial_usage == Usage(3, 1, 700, 1000, 2000)
    assert usage.output_text_chars == len("Hel")


def test_invoke_stream_exception_midway() -> None:
    data = anthropic_stream(metrics=None, stop_after=3) + exception_frame(
        AwsError("ModelStreamErrorException", "model failed", originalStatusCode=500)
    )
    usage = meter("invoke-with-response-stream", data, "anthropic")
    assert usage.error is not None
    assert (usage.error.code, usage.error.extra) == (
        "ModelStreamErrorException",
        {"originalStatusCode": 500},
    )
    assert usage.partial_usage is not None
    assert usage.partial_usage.input_tokens == 3


def test_llama_stream_with_invocation_metrics() -> None:
    data = chunks(
        {
            "generation": "Hi",
            "prompt_token_count": 21,
            "generation_token_count": 1,
            "stop_reason": None,
        },
        {
            "generation": " there",
            "prompt_token_count": None,
            "generation_token_count": 2,
            "stop_reason": "stop",
            METRICS: {
                "inputTokenCount": 21,
                "outputTokenCount": 2,
                "invocationLatency": 300,
                "firstByteLatency": 100,
            },
        },
    )
    usage = meter("invoke-with-response-stream", data, "llama")
    assert usage.result == Extracted(Usage(21, 2), "stop", 300)
    assert usage.output_text_chars == len("Hi there")


def test_nova_stream_metadata_chunk() -> None:
    data = chunks(
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Hi"}, "contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "end_turn"}},
        {"metadata": {"usage": {"inputTokens": 7, "outputTokens": 2}}},
    )
    usage = meter("invoke-with-response-stream", data, "nova")
    assert usage.result == Extracted(Usage(7, 2), "end_turn")
    assert usage.output_text_chars == 2


def test_malformed_chunk_is_an_event_stream_error() -> None:
    (frame,) = Decoder().feed(encode_chunk(b"{truncated"))
    with pytest.raises(EventStreamError, match="invalid model JSON"):
        StreamUsage("invoke-with-response-stream", "anthropic").observe(frame)


def test_unknown_operation() -> None:
    with pytest.raises(ValueError, match="unknown streaming operation"):
        StreamUsage("converse")


def test_generated_text_and_stream_text_hash_agree() -> None:
    import hashlib

    from spendgate.bedrock.eventstream import Decoder, encode_event
    from spendgate.bedrock.usage import StreamUsage, generated_text

    converse = {
        "output": {
            "message": {"role": "assistant", "content": [{"text": "Hello "}, {"text": "world"}]}
        },
        "stopReason": "end_turn",
    }
    anthropic = {"type": "message", "content": [{"type": "text", "text": "Hello world"}]}
    assert generated_text(converse) == generated_text(anthropic) == "Hello world"
    assert generated_text({"generation": "Hi"}) == "Hi"
    assert generated_text({"results": [{"outputText": "Hi"}]}) == "Hi"
    meter = StreamUsage("converse-stream")
    raw = b"".join(
        encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}})
        for t in ("Hello ", "world")
    )
    for frame in Decoder().feed(raw):
        meter.observe(frame)
    assert meter.text_sha256 == hashlib.sha256(b"Hello world").hexdigest()
    assert meter.output_text_chars == 11
