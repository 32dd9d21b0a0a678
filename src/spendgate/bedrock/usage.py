"""Token usage, stop reason and latency as Bedrock's responses state them — never a guess.

Token convention (Bedrock's; every spendgate count follows it):

- ``input_tokens`` is *uncached* input: it excludes cache reads and cache writes (Converse
  ``inputTokens``, ``X-Amzn-Bedrock-Input-Token-Count``, Anthropic ``input_tokens``, invocation
  metrics ``inputTokenCount``).
- ``cache_read_tokens`` were served from the prompt cache; cache writes are split by TTL into
  ``cache_write_5m_tokens`` and ``cache_write_1h_tokens``. A write whose TTL the response does
  not state counts as 5-minute.
- ``total = input + cache read + cache write + output`` (Converse: 3 + 0 + 24479 + 52 = 24534).
- OpenAI-shaped bodies (``usage.prompt_tokens``) *include* cached tokens, so we map
  ``input = prompt_tokens - prompt_tokens_details.cached_tokens`` and ``cache read =
  cached_tokens``; those shapes state no cache writes.

Sources, in order of preference (bedrock-formats.md §1.3, §2.4, §3.2-3.4):

- Converse: body ``usage`` (+ ``cacheDetails`` TTL split), ``stopReason``, ``metrics.latencyMs``;
  ConverseStream: the same members in the final ``metadata`` event.
- InvokeModel: the ``X-Amzn-Bedrock-*-Token-Count`` headers, then the model body's own usage;
  a body's 5m/1h cache-write split beats a combined header count.
- InvokeModelWithResponseStream: the last chunk's ``amazon-bedrock-invocationMetrics``, then the
  model's own chunk usage (Anthropic ``message_start`` + ``message_delta``).

A response whose input or output count we cannot find yields ``usage=None``, never zeros.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from spendgate.bedrock.errors import error_from_frame
from spendgate.bedrock.eventstream import Frame, chunk_bytes
from spendgate.errors import AwsError, EventStreamError

# Keys of the partial counts that readers return: only what the response states.
_IN, _OUT, _READ, _WRITE, _W5M, _W1H = "in", "out", "read", "write", "write_5m", "write_1h"
_Counts = dict[str, int]
_Reader = Callable[[Mapping[str, Any]], _Counts]

_CONVERSE_KEYS = (
    ("inputTokens", _IN),
    ("outputTokens", _OUT),
    ("cacheReadInputTokens", _READ),
    ("cacheWriteInputTokens", _WRITE),
    ("cacheReadInputTokenCount", _READ),  # Nova InvokeModel spelling
    ("cacheWriteInputTokenCount", _WRITE),
)
_ANTHROPIC_KEYS = (
    ("input_tokens", _IN),
    ("output_tokens", _OUT),
    ("cache_read_input_tokens", _READ),
    ("cache_creation_input_tokens", _WRITE),
)
_ANTHROPIC_SPLIT = (("ephemeral_5m_input_tokens", _W5M), ("ephemeral_1h_input_tokens", _W1H))
_METRICS_KEYS = (
    ("inputTokenCount", _IN),
    ("outputTokenCount", _OUT),
    ("cacheReadInputTokenCount", _READ),
    ("cacheWriteInputTokenCount", _WRITE),
)
_HEADER_KEYS = (
    ("x-amzn-bedrock-input-token-count", _IN),
    ("x-amzn-bedrock-output-token-count", _OUT),
    ("x-amzn-bedrock-cache-read-input-token-count", _READ),
    ("x-amzn-bedrock-cache-write-input-token-count", _WRITE),
)
_LLAMA_KEYS = (("prompt_token_count", _IN), ("generation_token_count", _OUT))
_TITAN_KEYS = (("inputTextTokenCount", _IN), ("totalOutputTextTokenCount", _OUT))
_TTL_FIELD = {"5m": _W5M, "1h": _W1H}
_METRICS_MEMBER = "amazon-bedrock-invocationMetrics"
_PROVIDER = re.compile(
    r"(?:^|[./:])(anthropic|amazon|meta|mistral|cohere|ai21|deepseek|openai|qwen)\.([a-z0-9]*)"
)
_FAMILY_OF_PROVIDER = {"meta": "llama"}
_CONVERSE_USAGE_EVENTS = frozenset({"contentBlockDelta", "messageStop", "metadata"})


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call in Bedrock's convention (see the module docstring)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
            + self.output_tokens
        )


@dataclass(frozen=True, slots=True)
class Extracted:
    """What a response states: usage (None = unknown), stop reason, latency in milliseconds."""

    usage: Usage | None
    stop_reason: str | None = None
    latency_ms: int | None = None


@functools.lru_cache(maxsize=4096)
def body_family(model: str) -> str:
    """The request/response body family of a model id, profile id or ARN.

    Finds ``<provider>.<model>`` after the start, a ``.`` (geo prefix), ``/`` or ``:`` (ARN):
    ``anthropic`` -> anthropic; ``amazon.nova*`` -> nova, ``amazon.titan*`` -> titan; ``meta`` ->
    llama; mistral, cohere, ai21, deepseek, openai, qwen by provider name; anything else
    (including application-inference-profile ARNs, which must be resolved first) -> ``other``.
    """
    match = _PROVIDER.search(model.lower())
    if match is None:
        return "other"
    provider, name = match.groups()
    if provider == "amazon":
        return next((f for f in ("nova", "titan") if name.startswith(f)), "other")
    return _FAMILY_OF_PROVIDER.get(provider, provider)


def from_converse(body: Mapping[str, Any]) -> Extracted:
    """Usage, ``stopReason`` and ``metrics.latencyMs`` of a Converse response body."""
    return Extracted(
        _to_usage(_converse_counts(body)), _str(body.get("stopReason")), _latency(body)
    )


def from_invoke(family: str, headers: Mapping[str, str], body: bytes) -> Extracted:
    """Usage of an InvokeModel response: token-count headers first, then the body of ``family``."""
    return from_invoke_doc(family, headers, _json_object(body))


def from_invoke_doc(
    family: str, headers: Mapping[str, str], doc: Mapping[str, Any] | None
) -> Extracted:
    """``from_invoke`` for a body the caller has already parsed (None: not a JSON object)."""
    lower = {name.lower(): value for name, value in headers.items()}
    stated = {f: n for key, f in _HEADER_KEYS if (n := _header_int(lower.get(key))) is not None}
    counts = _reader(family)(doc) if doc is not None else {}
    stop = _stop_reason(doc) if doc is not None else None
    latency = _header_int(lower.get("x-amzn-bedrock-invocation-latency"))
    return Extracted(_to_usage(_merge(stated, counts)), stop, latency)


class StreamUsage:
    """Sans-IO meter for a response stream; the proxy tees decoded frames into it."""

    def __init__(self, operation: str, family: str | None = None) -> None:
        if operation not in ("converse-stream", "invoke-with-response-stream"):
            raise ValueError(f"unknown streaming operation {operation!r}")
        self._converse = operation == "converse-stream"
        self._read = _reader(family)
        self._counts: _Counts = {}  # what the model's own events/chunks stated so far
        self._metrics: _Counts = {}  # the invoke stream's amazon-bedrock-invocationMetrics
        self._stop: str | None = None
        self._latency: int | None = None
        self._complete = False
        self._error: AwsError | None = None
        self._digest = hashlib.sha256()
        self.output_text_chars = 0

    @property
    def text_sha256(self) -> str:
        """SHA-256 (hex) of the generated text seen so far: the response's fingerprint."""
        return self._digest.hexdigest()

    def _saw_text(self, doc: Mapping[str, Any]) -> None:
        text = _text(doc)
        if text:
            self.output_text_chars += len(text)
            self._digest.update(text.encode())

    def observe(self, frame: Frame) -> None:
        """Account one decoded frame. ``EventStreamError`` if an event payload is malformed."""
        if frame.message_type != "event":
            self._error = error_from_frame(frame) or self._error
        elif self._converse:
            self._observe_converse(frame)
        elif frame.event_type == "chunk":
            self._observe_chunk(frame)

    @property
    def result(self) -> Extracted:
        """Final usage: the ``metadata`` event, or invocation metrics over the model's own usage.

        For invoke streams without invocation metrics, the model's own usage counts once the
        model has stated a stop reason; before that usage is None (see ``partial_usage``).
        """
        final = self._complete or (not self._converse and self._stop is not None)
        usage = _to_usage(_merge(self._metrics, self._counts)) if final else None
        return Extracted(usage, self._stop, self._latency)

    @property
    def error(self) -> AwsError | None:
        """The in-stream exception seen, if any."""
        return self._error

    @property
    def complete(self) -> bool:
        """True once the terminal usage event (``metadata`` / invocation metrics) was seen."""
        return self._complete

    @property
    def partial_usage(self) -> Usage | None:
        """Best stated knowledge so far, for an interrupted stream; None if nothing is known."""
        return _to_usage(_merge(self._metrics, self._counts))

    def _observe_converse(self, frame: Frame) -> None:
        kind = frame.event_type
        if kind not in _CONVERSE_USAGE_EVENTS:
            return
        doc = frame.json()
        if not isinstance(doc, dict):
            return
        if kind == "contentBlockDelta":
            self._saw_text(doc)
        elif kind == "messageStop":
            self._stop = _str(doc.get("stopReason")) or self._stop
        else:
            self._counts = _converse_counts(doc)
            self._latency = _latency(doc)
            self._complete = True

    def _observe_chunk(self, frame: Frame) -> None:
        try:
            doc = json.loads(chunk_bytes(frame))
        except ValueError as exc:
            raise EventStreamError(f"chunk event carries invalid model JSON: {exc}") from None
        if not isinstance(doc, dict):
            return
        self._counts.update(self._read(doc))
        self._stop = _stop_reason(doc) or self._stop
        self._saw_text(doc)
        metrics = doc.get(_METRICS_MEMBER)
        if isinstance(metrics, dict):
            self._metrics = _pick(metrics, _METRICS_KEYS)
            self._latency = _int(metrics.get("invocationLatency"))
            self._complete = True


# --- readers: each returns only the counts the document states --------------------------------


def _converse_counts(doc: Mapping[str, Any]) -> _Counts:
    """Converse/ConverseStream ``usage`` (also Nova InvokeModel bodies and stream ``metadata``)."""
    usage = _dict(doc.get("usage")) or _dict(_dict(doc.get("metadata")).get("usage"))
    counts = _pick(usage, _CONVERSE_KEYS)
    details = usage.get("cacheDetails")
    for item in details if isinstance(details, list) else ():
        field = _TTL_FIELD.get(str(_dict(item).get("ttl")))
        tokens = _int(_dict(item).get("inputTokens"))
        if field is not None and tokens is not None:
            counts[field] = counts.get(field, 0) + tokens
    return counts


def _anthropic_counts(doc: Mapping[str, Any]) -> _Counts:
    """Anthropic Messages ``usage`` (body, ``message_delta``) or ``message.usage`` (start)."""
    usage = _dict(doc.get("usage")) or _dict(_dict(doc.get("message")).get("usage"))
    counts = _pick(usage, _ANTHROPIC_KEYS)
    counts.update(_pick(_dict(usage.get("cache_creation")), _ANTHROPIC_SPLIT))
    return counts


def _openai_counts(doc: Mapping[str, Any]) -> _Counts:
    """OpenAI-shaped ``usage``: prompt_tokens include cached tokens, counted here as cache reads."""
    usage = _dict(doc.get("usage"))
    prompt = _int(usage.get("prompt_tokens"))
    cached = _int(_dict(usage.get("prompt_tokens_details")).get("cached_tokens"))
    counts = _pick(usage, (("completion_tokens", _OUT),))
    if prompt is not None:
        counts[_IN] = max(prompt - (cached or 0), 0)
    if cached is not None:
        counts[_READ] = cached
    return counts


def _titan_counts(doc: Mapping[str, Any]) -> _Counts:
    """Titan text/embeddings: ``inputTextTokenCount``; output from ``results[].tokenCount``."""
    counts = _pick(doc, _TITAN_KEYS)
    results = doc.get("results") if isinstance(doc.get("results"), list) else None
    outputs = [_int(_dict(r).get("tokenCount")) for r in results or ()]
    if outputs and None not in outputs:
        counts[_OUT] = sum(n or 0 for n in outputs)
    return counts


def _llama_counts(doc: Mapping[str, Any]) -> _Counts:
    return _pick(doc, _LLAMA_KEYS)


def _cohere_counts(doc: Mapping[str, Any]) -> _Counts:
    """Cohere's native ``meta.billed_units`` when present (Bedrock usually sends headers only)."""
    return _pick(_dict(_dict(doc.get("meta")).get("billed_units")), _ANTHROPIC_KEYS)


_READERS: dict[str, _Reader] = {
    "anthropic": _anthropic_counts,
    "nova": _converse_counts,
    "titan": _titan_counts,
    "llama": _llama_counts,
    "cohere": _cohere_counts,
    "mistral": _openai_counts,
    "openai": _openai_counts,
    "qwen": _openai_counts,
    "deepseek": _openai_counts,
    "ai21": _openai_counts,
}


def _any_counts(doc: Mapping[str, Any]) -> _Counts:
    """Family unknown: every reader (their keys do not overlap), merged."""
    counts: _Counts = {}
    for read in _READERS.values():
        counts.update(read(doc))
    return counts


def _reader(family: str | None) -> _Reader:
    return _READERS.get(family or "other", _any_counts)


def _stop_reason(doc: Mapping[str, Any]) -> str | None:
    """The stop reason under any family's key: top level, Anthropic ``delta``, Nova
    ``messageStop``, or the first of ``choices``/``outputs``/``results``/``generations``."""
    for key in ("stop_reason", "stopReason", "completionReason", "finish_reason"):
        if (value := _str(doc.get(key))) is not None:
            return value
    nested = _str(_dict(doc.get("delta")).get("stop_reason"))
    nested = nested or _str(_dict(doc.get("messageStop")).get("stopReason"))
    if nested is not None:
        return nested
    for key in ("choices", "outputs", "results", "generations"):
        items = doc.get(key)
        if isinstance(items, list) and items:
            first = _dict(items[0])
            for name in ("finish_reason", "stop_reason", "completionReason"):
                if (value := _str(first.get(name))) is not None:
                    return value
    return None


def generated_text(doc: Mapping[str, Any]) -> str:
    """All generated text of a non-streaming response body, in any family's shape."""
    message = _dict(_dict(doc.get("output")).get("message"))
    blocks = message.get("content") if message else doc.get("content")
    if isinstance(blocks, list):
        return "".join(
            b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str)
        )
    results = doc.get("results")
    if isinstance(results, list):
        return "".join(_str(_dict(r).get("outputText")) or "" for r in results)
    return _text(doc)


def _text(doc: Mapping[str, Any]) -> str:
    """Generated text in one stream event/chunk, under any family's key ("" if none)."""
    delta = _dict(doc.get("delta")) or _dict(_dict(doc.get("contentBlockDelta")).get("delta"))
    for value in (delta.get("text"), doc.get("generation"), doc.get("outputText"), doc.get("text")):
        if isinstance(value, str):
            return value
    for key, inner, name in (("choices", "delta", "content"), ("choices", "message", "content")):
        items = doc.get(key)
        if isinstance(items, list) and items:
            value = _dict(_dict(items[0]).get(inner)).get(name)
            if isinstance(value, str):
                return value
    outputs = doc.get("outputs")
    if isinstance(outputs, list) and outputs:
        value = _dict(outputs[0]).get("text")
        return value if isinstance(value, str) else ""
    return ""


# --- small helpers ------------------------------------------------------------------------------


def _merge(stated: _Counts, body: _Counts) -> _Counts:
    """Stated counts (headers, invocation metrics) win, but a body's 5m/1h write split beats
    a combined write count: then the combined count is the body's own (if it states one)."""
    merged = {**body, **stated}
    if _W5M in body or _W1H in body:
        merged.pop(_WRITE, None)
        if _WRITE in body:
            merged[_WRITE] = body[_WRITE]
    return merged


def _to_usage(counts: _Counts) -> Usage | None:
    """A ``Usage`` if input or output is stated; writes not covered by a TTL split count as 5m."""
    if _IN not in counts and _OUT not in counts:
        return None
    one_hour = counts.get(_W1H, 0)
    five_min = counts.get(_W5M, 0)
    written = counts.get(_WRITE, one_hour + five_min)
    return Usage(
        input_tokens=counts.get(_IN, 0),
        output_tokens=counts.get(_OUT, 0),
        cache_read_tokens=counts.get(_READ, 0),
        cache_write_5m_tokens=max(five_min, written - one_hour),
        cache_write_1h_tokens=one_hour,
    )


def _pick(source: Mapping[str, Any], keys: Iterable[tuple[str, str]]) -> _Counts:
    counts: _Counts = {}
    for key, field in keys:
        if (value := _int(source.get(key))) is not None:
            counts[field] = value
    return counts


def _latency(doc: Mapping[str, Any]) -> int | None:
    return _int(_dict(doc.get("metrics")).get("latencyMs"))


def _int(value: object) -> int | None:
    """A non-negative JSON integer (``bool`` excluded), else None."""
    return value if type(value) is int and value >= 0 else None


def _header_int(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _json_object(body: bytes) -> Mapping[str, Any] | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
