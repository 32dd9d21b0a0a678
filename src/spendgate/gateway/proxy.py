"""The hot path: one Bedrock runtime call in, signed and forwarded, metered on the way back.

    route → body (size limit) → key → region → attribution → model → credentials →
    requestMetadata injection → SigV4 → upstream → relay (JSON or event stream) → event

No database I/O happens here: keys come from memory, events go to the writer's queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import Response
from starlette.types import Receive, Scope

from spendgate.bedrock.errors import error_response
from spendgate.bedrock.metadata import parse_metadata_header
from spendgate.bedrock.modelids import (
    ModelKind,
    decode_model_id,
    encode_model_id,
    is_valid_region,
)
from spendgate.bedrock.operations import CONVERSE, OPERATION_NAMES
from spendgate.bedrock.prompts import Prompt, anthropic_prompt, converse_prompt, generic_prompt
from spendgate.bedrock.sigv4 import Credentials, Signer, SigningKeys
from spendgate.errors import AwsError
from spendgate.events import Event, new_event_id
from spendgate.gateway import attribution as attr
from spendgate.gateway import jsoncodec, logs
from spendgate.gateway.credentials import AwsIdentity
from spendgate.gateway.guard import BudgetDenied, Guard
from spendgate.gateway.keys import KeyRing, presented_key
from spendgate.gateway.metering import SERVICE_TIERS, Call, Outcome, event_for
from spendgate.gateway.resolution import resolve
from spendgate.settings import GatewaySettings
from spendgate.store.keys import KeyRecord

FORWARDED = ("content-type", "accept", "user-agent")
FORWARDED_PREFIXES = ("x-amzn-bedrock-", "x-sim-")
_MALFORMED = (
    "Malformed input request: the body is not valid JSON, please reformat your input and try again."
)


@dataclass(slots=True)
class Inbound:
    """A runtime request as the ASGI server handed it over (no framework objects on the hot
    path). ``call`` is set as soon as the gateway starts working on it."""

    method: str
    path: str  # raw, as on the wire (percent-encoded)
    headers: dict[str, str]  # lower-case names (ASGI guarantees it)
    receive: Receive
    call: Call | None = None

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> Inbound:
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        return cls(scope["method"], raw.decode("latin-1"), headers, receive)


@dataclass(frozen=True, slots=True)
class Outbound:
    url: str
    headers: list[tuple[str, str]]
    body: bytes


class Proxy:
    """Turns a client request into a signed upstream request and an event."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        keys: KeyRing,
        identity: Callable[[Mapping[str, str], KeyRecord | None, Call], Any],
        record: Callable[[Event], None],
        resolver: Callable[[str], str | None],
        profiles: Callable[[str], Awaitable[str | None]],
        clock: Callable[[], datetime],
        guard: Guard | None = None,
    ) -> None:
        self.settings = settings
        self.guard = guard
        self.keys = keys
        self.identity = identity
        self.record = record
        self.resolver = resolver
        self.profiles = profiles
        self.clock = clock
        self.signing_keys = SigningKeys(maxsize=256)

    async def prepare(self, request: Inbound, op: str, label: str) -> tuple[Call, Outbound]:
        """Authenticate, attribute, resolve and sign; raises AwsError for anything wrong."""
        call = Call(
            self.clock(), time.perf_counter(), new_event_id(), op, self.settings.default_region
        )
        logs.bind_request_id(call.gateway_request_id)
        request.call = call
        headers = request.headers
        body = await read_body(request, self.settings.max_body_bytes)
        call.request_bytes = len(body)
        key = await self._key(headers, call)
        call.region = _region(headers, self.settings.default_region)
        doc = _parse(body, op, headers)
        metadata = _caller_metadata(doc, headers, op)
        call.attribution = attr.merge(key.defaults if key else {}, headers, metadata)
        call.resolved = resolve(
            self.settings, decode_model_id(label), call.region, call.attribution.get("cost_center")
        )
        call.family = call.resolved.family
        if call.resolved.rewritten:
            call.routed_from = call.resolved.requested
        if call.resolved.ref.kind is ModelKind.APPLICATION_INFERENCE_PROFILE:
            await self.profiles(call.resolved.model_id)  # cached: makes pricing able to see it
        _check_allowed(key, call)
        call.service_tier = _service_tier(doc, headers)
        _fingerprint(call, doc, op)
        if self.guard is not None:
            await self.guard.reserve(call, doc)  # may deny, or downgrade the model
        identity: AwsIdentity = await self.identity(headers, key, call)
        call.principal = identity.principal
        return call, self._outbound(
            call,
            headers=headers,
            body=body,
            doc=doc,
            metadata=metadata,
            credentials=identity.credentials,
        )

    async def _key(self, headers: Mapping[str, str], call: Call) -> KeyRecord | None:
        presented = presented_key(headers)
        if presented is None and self.settings.allow_unauthenticated:
            return None
        record = await self.keys.authenticate(presented, call.started)
        call.key_id = record.id
        return record

    def _outbound(
        self,
        call: Call,
        *,
        headers: Mapping[str, str],
        body: bytes,
        doc: dict[str, Any] | None,
        metadata: Mapping[str, str] | None,
        credentials: Credentials,
    ) -> Outbound:
        assert call.resolved is not None
        endpoint = self.settings.bedrock_endpoint.format(region=call.region)
        parts = urlsplit(endpoint)
        model = encode_model_id(call.resolved.model_id)
        path = f"{parts.path.rstrip('/')}/model/{model}/{call.operation}"
        out = {
            k: v for k, v in headers.items() if k in FORWARDED or k.startswith(FORWARDED_PREFIXES)
        }
        if self.settings.inject_request_metadata and call.operation != "count-tokens":
            merged = call.attribution.as_metadata(metadata)
            if merged and call.operation in CONVERSE and doc is not None:
                body = attr.inject_converse(body, doc, merged)
            elif merged and call.operation not in CONVERSE:
                out["x-amzn-bedrock-request-metadata"] = json.dumps(merged, separators=(",", ":"))
        signer = Signer(credentials, call.region, keys=self.signing_keys)
        out |= signer.sign(
            method="POST", host=parts.netloc, path=path, headers=out, body=body, now=call.started
        )
        out["host"] = parts.netloc
        return Outbound(f"{parts.scheme}://{parts.netloc}{path}", list(out.items()), body)

    def finish(self, call: Call, outcome: Outcome) -> Event:
        outcome.latency_ms = int((time.perf_counter() - call.t0) * 1000)
        event = event_for(call, outcome, self.resolver)
        if self.guard is not None:
            self.guard.settle(call, event)
        self.record(event)
        return event


def route(request: Inbound) -> tuple[str, str]:
    """(operation, model label) from ``/model/{id}/{op}`` or ``/bedrock/model/{id}/{op}``."""
    path = request.path.removeprefix("/bedrock")
    parts = path.split("/")
    if len(parts) != 4 or parts[1] != "model" or parts[3] not in OPERATION_NAMES:
        raise AwsError(
            "UnknownOperationException", f"No Bedrock runtime operation at {path[:80]!r}."
        )
    if request.method != "POST":
        raise AwsError("UnknownOperationException", f"{request.method} is not supported here.")
    return parts[3], parts[2]


async def read_body(request: Inbound, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise AwsError("ValidationException", "The client closed the connection mid-request.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(size: int, limit: int) -> AwsError:
    return AwsError(
        "ValidationException",
        f"The request body ({size} bytes or more) exceeds the maximum of {limit} bytes.",
    )


def _region(headers: Mapping[str, str], default: str) -> str:
    region = headers.get("x-aws-region", "").strip() or default
    if not is_valid_region(region):
        raise AwsError(
            "ValidationException", "X-Aws-Region must be an AWS region such as us-east-1."
        )
    return region


def _parse(body: bytes, op: str, headers: Mapping[str, str]) -> dict[str, Any] | None:
    """The JSON body (Converse always; InvokeModel when it is JSON); None when opaque."""
    content_type = headers.get("content-type", "application/json")
    if op not in CONVERSE and op != "count-tokens" and "json" not in content_type:
        return None
    try:
        doc = jsoncodec.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise AwsError("ValidationException", _MALFORMED) from None
    if not isinstance(doc, dict):
        raise AwsError(
            "ValidationException",
            "Malformed input request: expected a JSON object, please reformat your input.",
        )
    return doc


def _caller_metadata(
    doc: dict[str, Any] | None, headers: Mapping[str, str], op: str
) -> dict[str, str] | None:
    if op in CONVERSE:
        return attr.check_metadata((doc or {}).get("requestMetadata"))
    header = headers.get("x-amzn-bedrock-request-metadata")
    if header is None:
        return None
    try:
        return attr.check_metadata(parse_metadata_header(header))
    except ValueError as err:
        raise AwsError("ValidationException", str(err)) from None


def _check_allowed(key: KeyRecord | None, call: Call) -> None:
    if key is None or key.allowed_models is None or call.resolved is None:
        return
    ref = call.resolved.ref
    names = {call.resolved.requested, call.resolved.model_id, ref.base_model}
    if not any(_matches(name, pattern) for name in names if name for pattern in key.allowed_models):
        raise AwsError(
            "AccessDeniedException",
            f"spendgate: API key {key.id} may not use model {call.resolved.requested}",
        )


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1]))


def _service_tier(doc: dict[str, Any] | None, headers: Mapping[str, str]) -> str:
    tier = headers.get("x-amzn-bedrock-service-tier")
    if tier is None and doc is not None and isinstance(doc.get("serviceTier"), dict):
        tier = doc["serviceTier"].get("type")
    return SERVICE_TIERS.get(str(tier).lower(), "standard") if tier else "standard"


def _fingerprint(call: Call, doc: dict[str, Any] | None, op: str) -> None:
    if doc is None:
        call.prompt_tokens = call.request_bytes // 3  # an opaque body: at most ~1 token / 3 bytes
        return
    prompt: Prompt
    if op in CONVERSE:
        prompt = converse_prompt(doc)
    elif call.family == "anthropic":
        prompt = anthropic_prompt(doc)
    else:
        prompt = generic_prompt(doc)
    call.prompt_hash, prefixes = prompt.hashes()
    call.prefix_hashes = list(prefixes)
    call.prompt_tokens = prompt.tokens
    call.cache_points = bool(prompt.breakpoints)


def error_reply(err: AwsError, request_id: str) -> Response:
    status, headers, body = error_response(err, request_id=request_id)
    if isinstance(err, BudgetDenied) and err.retry_after is not None:
        headers.append(("Retry-After", str(err.retry_after)))
    return Response(body, status, headers=dict(headers))
