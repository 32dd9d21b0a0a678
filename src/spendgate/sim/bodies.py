"""Response bodies and stream events in each API's and model family's own shape."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from typing import Any

from spendgate.sim.replies import Reply, split_tokens

_STOP = {  # Converse stop reason -> model-native spelling
    "anthropic": {"end_turn": "end_turn", "max_tokens": "max_tokens"},
    "llama": {"end_turn": "stop", "max_tokens": "length"},
    "mistral": {"end_turn": "stop", "max_tokens": "length"},
    "deepseek": {"end_turn": "stop", "max_tokens": "length"},
    "openai": {"end_turn": "stop", "max_tokens": "length"},
    "titan": {"end_turn": "FINISH", "max_tokens": "LENGTH"},
    "cohere": {"end_turn": "COMPLETE", "max_tokens": "MAX_TOKENS"},
}


def converse_usage(reply: Reply, caching: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "inputTokens": reply.input_tokens,
        "outputTokens": reply.output_tokens,
        "totalTokens": reply.input_tokens
        + reply.cache.read
        + reply.cache_write
        + reply.output_tokens,
    }
    if caching:
        usage["cacheReadInputTokens"] = reply.cache.read
        usage["cacheWriteInputTokens"] = reply.cache_write
        details = [
            {"ttl": ttl, "inputTokens": n}
            for ttl, n in (("1h", reply.cache.write_1h), ("5m", reply.cache.write_5m))
            if n
        ]
        if details:
            usage["cacheDetails"] = details
    return usage


def converse_body(reply: Reply, caching: bool, latency_ms: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": reply.text}]}},
        "stopReason": reply.stop_reason,
        "usage": converse_usage(reply, caching),
        "metrics": {"latencyMs": latency_ms},
    }


def converse_events(
    reply: Reply, caching: bool, latency_ms: int, per_chunk: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event type, payload) pairs of a ConverseStream response, in Bedrock's order."""
    yield "messageStart", {"role": "assistant"}
    for piece in split_tokens(reply.text, per_chunk):
        yield "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}
    yield "contentBlockStop", {"contentBlockIndex": 0}
    yield "messageStop", {"stopReason": reply.stop_reason}
    yield (
        "metadata",
        {"usage": converse_usage(reply, caching), "metrics": {"latencyMs": latency_ms}},
    )


def invoke_body(
    family: str, reply: Reply, model_id: str, prompt_texts: list[str]
) -> dict[str, Any]:
    stop = _STOP.get(family, _STOP["mistral"])[reply.stop_reason]
    n_in = reply.input_tokens
    if family == "anthropic":
        return {
            "id": _msg_id(reply),
            "type": "message",
            "role": "assistant",
            "model": model_id.split(".", 1)[-1],
            "content": [{"type": "text", "text": reply.text}],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": _anthropic_usage(reply, reply.output_tokens),
        }
    if family == "nova":
        usage = converse_usage(reply, caching=False)
        usage["cacheReadInputTokenCount"] = reply.cache.read
        usage["cacheWriteInputTokenCount"] = reply.cache_write
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": reply.text}]}},
            "stopReason": reply.stop_reason,
            "usage": usage,
        }
    if family == "llama":
        return {
            "generation": reply.text,
            "prompt_token_count": n_in,
            "generation_token_count": reply.output_tokens,
            "stop_reason": stop,
        }
    if family == "titan":
        return {
            "inputTextTokenCount": n_in,
            "results": [
                {
                    "tokenCount": reply.output_tokens,
                    "outputText": reply.text,
                    "completionReason": stop,
                }
            ],
        }
    if family == "openai":
        return {
            "id": "chatcmpl-" + _msg_id(reply)[-16:],
            "object": "chat.completion",
            "model": model_id,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": stop,
                }
            ],
            "usage": {
                "prompt_tokens": n_in,
                "completion_tokens": reply.output_tokens,
                "total_tokens": n_in + reply.output_tokens,
            },
        }
    if family == "cohere":
        return {
            "text": reply.text,
            "generation_id": _msg_id(reply),
            "finish_reason": stop,
            "chat_history": [],
        }
    if family == "titan-embed":
        return {"embedding": embedding(reply, 1024), "inputTextTokenCount": n_in}
    if family == "cohere-embed":
        vectors = [embedding(reply, 1024) for _ in prompt_texts]
        return {
            "id": _msg_id(reply),
            "response_type": "embeddings_floats",
            "embeddings": vectors,
            "texts": prompt_texts,
        }
    return {"outputs": [{"text": reply.text, "stop_reason": stop}]}  # mistral, deepseek, others


def invoke_chunks(family: str, reply: Reply, model_id: str, per_chunk: int) -> list[dict[str, Any]]:
    """Model-native chunks of an InvokeModelWithResponseStream answer (metrics added later)."""
    stop = _STOP.get(family, _STOP["mistral"])[reply.stop_reason]
    pieces = split_tokens(reply.text, per_chunk)
    if family == "anthropic":
        return _anthropic_chunks(reply, model_id, pieces, stop)
    if family == "nova":
        return [
            {"messageStart": {"role": "assistant"}},
            *(
                {"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}}
                for p in pieces
            ),
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": reply.stop_reason}},
            {
                "metadata": {
                    "usage": {
                        "inputTokens": reply.input_tokens,
                        "outputTokens": reply.output_tokens,
                        "cacheReadInputTokenCount": reply.cache.read,
                        "cacheWriteInputTokenCount": reply.cache_write,
                    }
                }
            },
        ]
    chunks = [_generic_chunk(family, p, reply, i) for i, p in enumerate(pieces)]
    chunks[-1] = _generic_chunk(family, pieces[-1], reply, len(pieces) - 1, stop)
    return chunks


def _generic_chunk(family: str, piece: str, reply: Reply, i: int, stop: str | None = None) -> Any:
    if family == "llama":
        return {
            "generation": piece,
            "prompt_token_count": reply.input_tokens if i == 0 else None,
            "generation_token_count": reply.output_tokens if stop else i + 1,
            "stop_reason": stop,
        }
    if family == "titan":
        return {
            "outputText": piece,
            "index": 0,
            "totalOutputTextTokenCount": reply.output_tokens,
            "completionReason": stop,
            "inputTextTokenCount": reply.input_tokens,
        }
    if family == "openai":
        return {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": stop}]}
    if family == "cohere":
        return {"text": piece, "is_finished": stop is not None, "finish_reason": stop}
    return {"outputs": [{"text": piece, "stop_reason": stop}]}


def _anthropic_chunks(reply: Reply, model_id: str, pieces: list[str], stop: str) -> list[Any]:
    start_usage = _anthropic_usage(reply, 1)
    return [
        {
            "type": "message_start",
            "message": {
                "id": _msg_id(reply),
                "type": "message",
                "role": "assistant",
                "model": model_id.split(".", 1)[-1],
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
            for p in pieces
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": reply.output_tokens},
        },
        {"type": "message_stop"},
    ]


def _anthropic_usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens,
        "cache_creation_input_tokens": reply.cache_write,
        "cache_read_input_tokens": reply.cache.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": reply.cache.write_5m,
            "ephemeral_1h_input_tokens": reply.cache.write_1h,
        },
        "output_tokens": output_tokens,
    }


def invocation_metrics(
    reply: Reply, caching: bool, latency_ms: int, first_byte_ms: int
) -> dict[str, int]:
    metrics = {
        "inputTokenCount": reply.input_tokens,
        "outputTokenCount": reply.output_tokens,
        "invocationLatency": latency_ms,
        "firstByteLatency": first_byte_ms,
    }
    if caching:
        metrics["cacheReadInputTokenCount"] = reply.cache.read
        metrics["cacheWriteInputTokenCount"] = reply.cache_write
    return metrics


def embedding(reply: Reply, dimensions: int) -> list[float]:
    seed = hashlib.sha256(reply.text.encode()).digest()
    raw = (seed * (dimensions * 2 // len(seed) + 1))[: dimensions * 2]
    return [round(v / 32768, 6) for v in struct.unpack(f">{dimensions}h", raw)]


def _msg_id(reply: Reply) -> str:
    return "msg_bdrk_01" + hashlib.sha256(reply.text.encode()).hexdigest()[:22]
