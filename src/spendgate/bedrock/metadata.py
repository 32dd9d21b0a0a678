"""Bedrock's rules for ``requestMetadata`` (Converse) and ``X-Amzn-Bedrock-Request-Metadata``.

1 to 16 entries; keys 1-256 characters, values 0-256 characters; both limited to letters,
digits, whitespace and ``: _ @ $ # = / + , - .`` (bedrock-formats.md §1.2). The same rules apply
to the InvokeModel header, whose value is a JSON object of strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

MAX_ENTRIES = 16
MAX_KEY = 256
MAX_VALUE = 256
_ALLOWED = re.compile(r"[a-zA-Z0-9\s:_@$#=/+,\-.]*")


def metadata_problems(metadata: Any, where: str = "requestMetadata") -> list[str]:
    """Every way ``metadata`` breaks the rules, as AWS-style sentences (empty when valid)."""
    if not isinstance(metadata, Mapping):
        return [f"Value at '{where}' failed to satisfy constraint: Member must be a map"]
    problems: list[str] = []
    if not 1 <= len(metadata) <= MAX_ENTRIES:
        problems.append(
            f"Value at '{where}' failed to satisfy constraint: "
            f"Member must have between 1 and {MAX_ENTRIES} entries"
        )
    for key, value in metadata.items():
        problems.extend(_entry_problems(key, value, where))
    return problems


def is_valid_value(value: str) -> bool:
    """Whether one value may be written to requestMetadata (length and characters)."""
    return len(value) <= MAX_VALUE and _ALLOWED.fullmatch(value) is not None


def _entry_problems(key: Any, value: Any, where: str) -> list[str]:
    if not isinstance(key, str) or not isinstance(value, str):
        return [f"Value at '{where}' failed to satisfy constraint: keys and values must be strings"]
    out: list[str] = []
    label = _show(key)
    if not 1 <= len(key) <= MAX_KEY:
        out.append(f"Key '{label}' at '{where}' must have length between 1 and {MAX_KEY}")
    if len(value) > MAX_VALUE:
        out.append(f"Value at '{where}.{label}' must have length less than or equal to {MAX_VALUE}")
    if not _ALLOWED.fullmatch(key):
        out.append(
            f"Key '{label}' at '{where}' contains a character outside [a-zA-Z0-9\\s:_@$#=/+,-.]"
        )
    if not _ALLOWED.fullmatch(value):
        out.append(
            f"Value at '{where}.{label}' contains a character outside [a-zA-Z0-9\\s:_@$#=/+,-.]"
        )
    return out


def parse_metadata_header(value: str) -> dict[str, str]:
    """Decode ``X-Amzn-Bedrock-Request-Metadata``; raises ValueError with a reason."""
    try:
        data = json.loads(value)
    except ValueError:
        raise ValueError("X-Amzn-Bedrock-Request-Metadata must be a JSON object") from None
    if not isinstance(data, dict):
        raise ValueError("X-Amzn-Bedrock-Request-Metadata must be a JSON object")
    return data


def _show(text: str) -> str:
    text = text[:60]
    return text.encode("unicode_escape").decode("ascii").replace("'", "\\'")
