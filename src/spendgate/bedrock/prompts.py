"""A request's prompt as canonical pieces, cache breakpoints and a token estimate.

Both request families are reduced to the same thing: an ordered list of ``Piece`` in the order
the model reads them (tools, then system, then messages) and the cache *breakpoints*: the piece
index where a cacheable prefix ends, with its TTL.

- Converse: a ``{"cachePoint": {"type": "default", "ttl": "5m"|"1h"}}`` block in
  ``toolConfig.tools``, ``system`` or a message's ``content`` ends a prefix *before* itself.
- Anthropic Messages (InvokeModel): a block carrying ``"cache_control": {"type": "ephemeral",
  "ttl": ...}`` ends a prefix *including* itself.

A piece's ``canonical`` bytes (computed only when hashing) are compact, key-sorted JSON, so the
same prompt hashes the same whatever the client's key order or whitespace. Hashes are what
spendgate stores; never the text.

Token estimate (documented, deterministic; used by the simulator as its tokenizer and by the
gateway to reserve budget before a call): ``ceil(characters / 4)`` for each text, tool
definition, tool input or tool result; 3 tokens per message for the role; 1,600 per image or
video; ``ceil(bytes / 6)`` per document. It is an estimate, never billed: billing uses the
usage the response reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

IMAGE_TOKENS = 1600
ROLE_TOKENS = 3
# json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False), without building an
# encoder per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Piece:
    value: Any  # the JSON value (a content block, a role marker, a string)
    tokens: int

    @property
    def canonical(self) -> bytes:
        return canonical(self.value)


@dataclass(frozen=True, slots=True)
class Breakpoint:
    end: int  # pieces[:end] is the cacheable prefix
    ttl: str  # "5m" | "1h"


@dataclass(frozen=True, slots=True)
class Prompt:
    pieces: tuple[Piece, ...]
    breakpoints: tuple[Breakpoint, ...]

    @property
    def tokens(self) -> int:
        return sum(p.tokens for p in self.pieces)

    def prefix_tokens(self, end: int) -> int:
        return sum(p.tokens for p in self.pieces[:end])

    def hashes(self) -> tuple[str, tuple[str, ...]]:
        """SHA-256 of the whole prompt and of each cacheable prefix (hex)."""
        if not self.breakpoints:  # the common case: one serialisation, one hash
            return hashlib.sha256(canonical([p.value for p in self.pieces])).hexdigest(), ()
        digest = hashlib.sha256()
        prefixes: list[str] = []
        ends = iter(b.end for b in self.breakpoints)
        next_end = next(ends, None)
        for i, piece in enumerate(self.pieces, start=1):
            digest.update(piece.canonical)
            digest.update(b"\n")
            while next_end == i:
                prefixes.append(digest.copy().hexdigest())
                next_end = next(ends, None)
        return digest.hexdigest(), tuple(prefixes)


def canonical(value: Any) -> bytes:
    return _CANONICAL.encode(value).encode()


def text_tokens(text: str) -> int:
    return -(-len(text) // 4)


def block_tokens(block: Any) -> int:
    """Estimated tokens of one content block (Converse or Anthropic shape)."""
    if isinstance(block, str):
        return text_tokens(block)
    if not isinstance(block, Mapping):
        return text_tokens(json.dumps(block))
    if isinstance(block.get("text"), str):
        return text_tokens(block["text"])
    for media in ("image", "video"):
        if media in block or block.get("type") == media:
            return IMAGE_TOKENS
    if "document" in block or block.get("type") == "document":
        return -(-len(json.dumps(block.get("document", block))) // 6)
    return text_tokens(json.dumps(block, separators=(",", ":")))


class _Builder:
    def __init__(self) -> None:
        self.pieces: list[Piece] = []
        self.breakpoints: list[Breakpoint] = []

    def add(self, value: Any, tokens: int) -> None:
        self.pieces.append(Piece(value, tokens))

    def cut(self, ttl: Any) -> None:
        ttl = ttl if ttl in ("5m", "1h") else "5m"
        end = len(self.pieces)
        if end and (not self.breakpoints or self.breakpoints[-1].end != end):
            self.breakpoints.append(Breakpoint(end, ttl))

    def build(self) -> Prompt:
        return Prompt(tuple(self.pieces), tuple(self.breakpoints))


def converse_prompt(body: Mapping[str, Any]) -> Prompt:
    """Pieces of a Converse / ConverseStream / CountTokens request body."""
    b = _Builder()
    tools = (body.get("toolConfig") or {}).get("tools") or []
    system = body.get("system") or []
    for item in (*_as_list(tools), *_as_list(system)):
        _converse_block(b, item)
    for message in _as_list(body.get("messages")):
        if not isinstance(message, Mapping):
            continue
        b.add({"role": message.get("role")}, ROLE_TOKENS)
        for block in _as_list(message.get("content")):
            _converse_block(b, block)
    return b.build()


def _converse_block(b: _Builder, block: Any) -> None:
    if isinstance(block, Mapping) and "cachePoint" in block:
        point = block["cachePoint"]
        b.cut(point.get("ttl") if isinstance(point, Mapping) else None)
    else:
        b.add(block, block_tokens(block))


def anthropic_prompt(body: Mapping[str, Any]) -> Prompt:
    """Pieces of an Anthropic Messages body (InvokeModel on ``anthropic.*`` models)."""
    b = _Builder()
    system = body.get("system")
    for item in (*_as_list(body.get("tools")), *_blocks(system)):
        _anthropic_block(b, item)
    for message in _as_list(body.get("messages")):
        if not isinstance(message, Mapping):
            continue
        b.add({"role": message.get("role")}, ROLE_TOKENS)
        for block in _blocks(message.get("content")):
            _anthropic_block(b, block)
    return b.build()


def _anthropic_block(b: _Builder, block: Any) -> None:
    control = block.get("cache_control") if isinstance(block, Mapping) else None
    if isinstance(block, Mapping) and control is not None:
        block = {k: v for k, v in block.items() if k != "cache_control"}
    b.add(block, block_tokens(block))
    if isinstance(control, Mapping):
        b.cut(control.get("ttl"))


def generic_prompt(body: Mapping[str, Any]) -> Prompt:
    """Pieces of any other model-native body: every string value, in document order."""
    b = _Builder()
    for text in _strings(body):
        b.add(text, text_tokens(text))
    return b.build()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return _as_list(content)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
