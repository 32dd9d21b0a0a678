"""Forward a prepared call and relay Bedrock's answer back, byte for byte, metering it.

Non-streaming answers are read whole, metered, and returned with Bedrock's status, headers and
body plus ``x-spendgate-cost-usd``. Streams are relayed chunk by chunk as they arrive (never
buffered) while a decoder tees the frames into the usage meter; when the stream ends, fails or
the client goes away, the event is recorded — as ``partial`` with what was seen when it did not
finish, and the upstream call is cancelled by closing its connection.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from spendgate.bedrock.errors import exception_frame, parse_error_response
from spendgate.bedrock.eventstream import Decoder
from spendgate.bedrock.operations import CONVERSE, STREAMING
from spendgate.bedrock.usage import (
    Extracted,
    StreamUsage,
    from_converse,
    from_invoke_doc,
    generated_text,
)
from spendgate.errors import AwsError, EventStreamError
from spendgate.gateway import jsoncodec
from spendgate.gateway.metering import Call, Outcome
from spendgate.gateway.proxy import Inbound, Proxy, error_reply, route
from spendgate.gateway.upstream import Upstream, UpstreamError, UpstreamResponse, UpstreamTimeout

log = logging.getLogger("spendgate.gateway")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        "date",
        "server",
    }
)


async def handle(proxy: Proxy, upstream: Upstream, request: Inbound) -> ASGIApp:
    try:
        op, label = route(request)
        call, out = await proxy.prepare(request, op, label)
    except AwsError as err:
        return _rejected(proxy, request, err)
    try:
        response = await upstream.request("POST", out.url, out.headers, out.body)
    except UpstreamError as err:
        return _unreachable(proxy, call, err)
    if response.status == 200 and op in STREAMING:
        return _stream(proxy, call, response)
    return await _unary(proxy, call, response)


def _rejected(proxy: Proxy, request: Inbound, err: AwsError) -> Response:
    call = request.call
    if call is None:
        return error_reply(err, "-")
    proxy.finish(call, Outcome("rejected", err.status, error=err))
    return error_reply(err, call.gateway_request_id)


def _unreachable(proxy: Proxy, call: Call, err: UpstreamError) -> Response:
    if isinstance(err, UpstreamTimeout) and err.kind != "connect":
        aws = AwsError(
            "ModelTimeoutException", f"spendgate: Bedrock did not answer in time ({err})"
        )
    else:
        aws = AwsError("ServiceUnavailableException", f"spendgate could not reach Bedrock: {err}")
    proxy.finish(call, Outcome("error", aws.status, error=aws))
    return error_reply(aws, call.gateway_request_id)


async def _unary(proxy: Proxy, call: Call, response: UpstreamResponse) -> ASGIApp:
    try:
        body = await response.read()
    except UpstreamError as err:
        await response.aclose()
        return _unreachable(proxy, call, err)
    await response.aclose()
    outcome = Outcome(
        "ok" if response.status == 200 else "error",
        response.status,
        request_id=response.header("x-amzn-requestid"),
        response_bytes=len(body),
        ttfb_ms=int((time.perf_counter() - call.t0) * 1000),
    )
    headers = _relayed(response)
    if response.status == 200:
        outcome.extracted, outcome.response_hash = _meter(call, response, body)
    else:
        outcome.error = parse_error_response(response.status, dict(response.headers), body)
    event = proxy.finish(call, outcome)
    if event.cost_usd is not None and response.status == 200:
        headers["x-spendgate-cost-usd"] = str(event.cost_usd)
    headers["x-spendgate-request-id"] = call.gateway_request_id
    return RawResponse(response.status, headers, body)


class RawResponse:
    """A finished answer sent as two ASGI messages: Bedrock's status, headers and body as they
    are (no framework header processing on the hot path)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        raw.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})


def _meter(call: Call, response: UpstreamResponse, body: bytes) -> tuple[Extracted, str | None]:
    try:
        doc: Any = jsoncodec.loads(body)
    except ValueError:
        doc = None
    if call.operation == "count-tokens":
        return Extracted(None), None
    if call.operation in CONVERSE:
        extracted = from_converse(doc if isinstance(doc, dict) else {})
    else:
        parsed = doc if isinstance(doc, dict) else None
        extracted = from_invoke_doc(call.family or "other", dict(response.headers), parsed)
    text = generated_text(doc) if isinstance(doc, dict) else ""
    return extracted, hashlib.sha256(text.encode()).hexdigest() if text else None


def _relayed(response: UpstreamResponse) -> dict[str, str]:
    return {k: v for k, v in response.headers if k.lower() not in HOP_BY_HOP}


def _stream(proxy: Proxy, call: Call, response: UpstreamResponse) -> StreamingResponse:
    headers = _relayed(response)
    headers["x-spendgate-request-id"] = call.gateway_request_id
    return StreamingResponse(
        _relay(proxy, call, response),
        status_code=200,
        headers=headers,
        media_type=response.header("content-type") or "application/vnd.amazon.eventstream",
    )


async def _relay(proxy: Proxy, call: Call, response: UpstreamResponse) -> AsyncIterator[bytes]:
    meter = StreamUsage(call.operation, call.family)
    decoder: Decoder | None = Decoder()
    outcome = Outcome("partial", 200, request_id=response.header("x-amzn-requestid"), streamed=True)
    try:
        async for chunk in response.aiter_bytes():
            if outcome.ttfb_ms is None:
                outcome.ttfb_ms = int((time.perf_counter() - call.t0) * 1000)
            outcome.response_bytes += len(chunk)
            decoder = _tee(decoder, meter, chunk)
            yield chunk
        outcome.status = "ok" if meter.complete and meter.error is None else outcome.status
    except UpstreamError as err:
        outcome.error = AwsError(
            "InternalServerException", f"spendgate: the Bedrock stream broke: {err}"
        )
        yield exception_frame(outcome.error)
    finally:
        await response.aclose()
        if meter.error is not None:
            outcome.status, outcome.error = "error", meter.error
        outcome.extracted = (
            meter.result
            if meter.complete
            else Extracted(meter.partial_usage, meter.result.stop_reason)
        )
        outcome.response_hash = meter.text_sha256 if meter.output_text_chars else None
        proxy.finish(call, outcome)


def _tee(decoder: Decoder | None, meter: StreamUsage, chunk: bytes) -> Decoder | None:
    """Feed the meter; a stream we cannot decode is still relayed, just no longer metered."""
    if decoder is None:
        return None
    try:
        for frame in decoder.feed(chunk):
            meter.observe(frame)
    except EventStreamError as err:
        log.warning("cannot meter a Bedrock stream any further: %s", err)
        return None
    return decoder
