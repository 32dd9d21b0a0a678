"""Latency, time to first token and tokens per second shape the answers (lower bounds only)."""

from __future__ import annotations

import time
from typing import Any

from helpers import bedrock_client

HELLO = [{"role": "user", "content": [{"text": "hello"}]}]


def test_stream_time_to_first_token_and_pacing(sim_factory: Any) -> None:
    c = bedrock_client(sim_factory(ttft_ms=300, tokens_per_second=400))
    started = time.perf_counter()
    stream = c.converse_stream(
        modelId="amazon.nova-lite-v1:0", messages=HELLO, inferenceConfig={"maxTokens": 40}
    )["stream"]
    first = None
    for _event in stream:
        if first is None:
            first = time.perf_counter() - started
    total = time.perf_counter() - started
    assert first is not None and first >= 0.3
    assert total >= 0.3 + 40 / 400 * 0.9  # 10 deltas of 4 tokens at 400 tokens/s


def test_unary_latency(sim_factory: Any) -> None:
    c = bedrock_client(sim_factory(latency_ms=250))
    started = time.perf_counter()
    r = c.converse(modelId="amazon.nova-lite-v1:0", messages=HELLO)
    assert time.perf_counter() - started >= 0.25
    assert r["metrics"]["latencyMs"] >= 250
