"""A fast, fixed Bedrock stand-in for gateway benchmarks: answers every Converse call with the
same JSON (with usage) and every ConverseStream call with the same six event-stream frames, no
signature check, no work. Run: ``uvicorn bench.fast_upstream:app`` (or via gateway_bench.py)."""

from __future__ import annotations

import json
from typing import Any

from spendgate.bedrock.eventstream import encode_event

CONVERSE = json.dumps(
    {
        "output": {"message": {"role": "assistant", "content": [{"text": "Forty-two."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
        "metrics": {"latencyMs": 1},
    },
    separators=(",", ":"),
).encode()
STREAM = b"".join(
    encode_event(kind, payload)
    for kind, payload in (
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Forty"}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "-two."}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": "end_turn"}),
        (
            "metadata",
            {
                "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
                "metrics": {"latencyMs": 1},
            },
        ),
    )
)
JSON_HEADERS = [(b"content-type", b"application/json"), (b"x-amzn-requestid", b"bench-0001")]
STREAM_HEADERS = [
    (b"content-type", b"application/vnd.amazon.eventstream"),
    (b"x-amzn-requestid", b"bench-0001"),
]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    stream = scope["path"].endswith("-stream")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": STREAM_HEADERS if stream else JSON_HEADERS,
        }
    )
    await send({"type": "http.response.body", "body": STREAM if stream else CONVERSE})
