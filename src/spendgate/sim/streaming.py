"""Sending answers: JSON bodies after the simulated model time, or event streams paced by
time to first token and tokens per second, with optional mid-stream exceptions."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.responses import Response, StreamingResponse

from spendgate.bedrock.errors import exception_frame
from spendgate.bedrock.eventstream import encode_chunk, encode_event
from spendgate.bedrock.operations import OPERATION_NAMES
from spendgate.sim import bodies, operations
from spendgate.sim.auth import Caller
from spendgate.sim.faults import Fault
from spendgate.sim.invocation_log import log_record
from spendgate.sim.replies import Reply
from spendgate.sim.routing import Target

if TYPE_CHECKING:
    from spendgate.sim.app import Simulator

TOKENS_PER_DELTA = 4
_PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True, slots=True)
class Answer:
    op: str
    model_id: str
    target: Target
    who: Caller
    call: operations.Call
    reply: Reply
    timing: tuple[float, float, float]  # latency ms, time to first token ms, tokens per second
    request_id: str
    started: float

    def elapsed_ms(self) -> int:
        # ceil: uvloop's timers have 1 ms resolution and may wake up to 1 ms early
        return math.ceil((time.perf_counter() - self.started) * 1000)


class Streamer:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def unary(self, a: Answer) -> Response:
        latency, _, tps = a.timing
        delay_ms = latency + (a.reply.output_tokens / tps * 1000 if tps else 0.0)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        model = a.target.model
        headers = {"x-amzn-RequestId": a.request_id}
        if a.op == "converse":
            body = bodies.converse_body(a.reply, model.caching, a.elapsed_ms())
        else:
            texts = operations.prompt_texts(a.call.body)
            body = bodies.invoke_body(model.family, a.reply, model.model_id, texts)
            headers |= operations.invoke_headers(a.reply, model, a.elapsed_ms())
        self._record(a, body)
        raw = json.dumps(body, separators=(",", ":")).encode()
        return Response(raw, 200, headers=headers, media_type="application/json")

    def response(self, a: Answer, fault: Fault | None) -> StreamingResponse:
        headers = {"x-amzn-RequestId": a.request_id}
        if a.op == "invoke-with-response-stream":
            headers["X-Amzn-Bedrock-Content-Type"] = "application/json"
        return StreamingResponse(
            self._frames(a, fault), headers=headers, media_type="application/vnd.amazon.eventstream"
        )

    async def _frames(self, a: Answer, fault: Fault | None) -> AsyncIterator[bytes]:
        latency, ttft, tps = a.timing
        if latency + ttft:
            await asyncio.sleep((latency + ttft) / 1000)
        first_byte_ms = a.elapsed_ms()
        pause = TOKENS_PER_DELTA / tps if tps else 0.0
        frames = self._converse_frames(a) if a.op == "converse-stream" else None
        source = frames or self._invoke_frames(a, first_byte_ms)
        for i, frame in enumerate(source):
            if fault is not None and i == fault.after_events:
                yield exception_frame(fault.error)
                return
            yield frame
            if pause:
                await asyncio.sleep(pause)

    def _converse_frames(self, a: Answer) -> Iterator[bytes]:
        caching = a.target.model.caching
        events = list(bodies.converse_events(a.reply, caching, 0, TOKENS_PER_DELTA))
        for i, (kind, payload) in enumerate(events):
            if kind == "metadata":
                payload["metrics"]["latencyMs"] = a.elapsed_ms()
                self._record(a, bodies.converse_body(a.reply, caching, a.elapsed_ms()))
            yield encode_event(kind, {**payload, "p": _PAD[: 1 + (i * 7) % len(_PAD)]})

    def _invoke_frames(self, a: Answer, first_byte_ms: int) -> Iterator[bytes]:
        model = a.target.model
        chunks = bodies.invoke_chunks(model.family, a.reply, model.model_id, TOKENS_PER_DELTA)
        last = len(chunks) - 1
        for i, chunk in enumerate(chunks):
            if i == last:
                metrics = bodies.invocation_metrics(
                    a.reply, model.caching, a.elapsed_ms(), first_byte_ms
                )
                chunks[i] = {**chunk, "amazon-bedrock-invocationMetrics": metrics}
                self._record(a, chunks)
            yield encode_chunk(chunks[i], padding=_PAD[: 1 + (i * 7) % len(_PAD)])

    def _record(self, a: Answer, response_body: Any) -> None:
        writer = self.sim.invocation_log
        if writer is None:
            return
        now = self.sim.clock()
        reply = a.reply
        record = log_record(
            when=now,
            account_id=self.sim.account.account_id,
            identity_arn=a.who.arn,
            region=a.who.region,
            inference_region=a.target.inference_region,
            request_id=a.request_id,
            operation=OPERATION_NAMES[a.op],
            model_id=a.model_id,
            metadata=a.call.metadata,
            input_tokens=reply.input_tokens,
            cache_read=reply.cache.read,
            cache_write=reply.cache_write,
            output_tokens=reply.output_tokens,
            bodies=(a.call.body, response_body)
            if self.sim.settings.invocation_log_bodies
            else None,
        )
        writer.add(record, now)
