"""The runtime operations: URL path segment -> API operation name."""

from __future__ import annotations

OPERATION_NAMES = {
    "converse": "Converse",
    "converse-stream": "ConverseStream",
    "invoke": "InvokeModel",
    "invoke-with-response-stream": "InvokeModelWithResponseStream",
    "count-tokens": "CountTokens",
}
STREAMING = frozenset({"converse-stream", "invoke-with-response-stream"})
CONVERSE = frozenset({"converse", "converse-stream"})
