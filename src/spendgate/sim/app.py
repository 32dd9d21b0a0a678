"""``spendgate sim``: a Bedrock runtime that behaves like AWS, for tests, benchmarks and demos.

Request pipeline: route (``/model/{modelId}/{operation}``) → body (size limit) → authenticate
(SigV4 or Bearer API key) → resolve the model → validate → inject faults → answer (JSON or an
event stream) → one log line, and an invocation-log record when configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from spendgate.bedrock.errors import error_response
from spendgate.bedrock.modelids import decode_model_id
from spendgate.bedrock.operations import OPERATION_NAMES
from spendgate.errors import AwsError
from spendgate.settings import SimSettings
from spendgate.sim import control, operations, sts
from spendgate.sim.account import Account, load_account
from spendgate.sim.auth import authenticate
from spendgate.sim.cache import PromptCache
from spendgate.sim.faults import pick_fault
from spendgate.sim.invocation_log import InvocationLogWriter
from spendgate.sim.models import known_models
from spendgate.sim.routing import resolve
from spendgate.sim.streaming import Answer, Streamer

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Simulator:
    def __init__(
        self, settings: SimSettings, *, account: Account, clock: Clock, rng: random.Random
    ) -> None:
        self.settings = settings
        self.account = account
        self.clock = clock
        self.rng = rng
        self.models = known_models()
        self.cache = PromptCache(min_tokens=settings.cache_min_tokens)
        root = settings.invocation_log_dir
        self.invocation_log = InvocationLogWriter(root) if root else None
        self.streamer = Streamer(self)
        self.request_log: list[str] = []  # one line per request, written in batches

    def flush_request_log(self) -> None:
        lines, self.request_log = self.request_log, []
        if lines:
            sys.stderr.write("".join(lines))
            sys.stderr.flush()

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        op, model_id, response = "-", "-", None
        try:
            op, label = _route(request)
            model_id = decode_model_id(label)
            response = await self._call(request, op, model_id, request_id, started)
        except AwsError as err:
            status, headers, body = error_response(err, request_id=request_id)
            response = Response(body, status, headers=dict(headers))
        if self.settings.log_requests:
            elapsed = (time.perf_counter() - started) * 1000
            outcome = response.headers.get("x-amzn-errortype", "ok")
            self.request_log.append(
                f"{self.clock():%Y-%m-%dT%H:%M:%S}Z spendgate.sim {request_id} {op} {model_id} "
                f"{response.status_code} {elapsed:.1f}ms {outcome}\n"
            )
        return response

    async def sts(self, request: Request) -> Response:
        """STS AssumeRole (sim/sts.py), answered in STS's XML."""
        request_id = str(uuid.uuid4())
        try:
            body = await _read_body(request, 64 * 1024)
            authenticate(request, body, self.account, self.clock(), service="sts")
            xml = sts.assume_role(self.account, body, self.clock())
            return Response(xml, 200, media_type="text/xml")
        except AwsError as err:
            return Response(sts.error_xml(err, request_id), err.status, media_type="text/xml")

    async def control(self, request: Request) -> Response:
        """GetInferenceProfile / ListInferenceProfiles (sim/control.py)."""
        request_id = str(uuid.uuid4())
        try:
            if request.method != "GET":
                raise AwsError(
                    "UnknownOperationException", f"{request.method} is not supported here."
                )
            who = authenticate(request, await request.body(), self.account, self.clock())
            raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
            parts = raw.decode("latin-1").split("/")
            if len(parts) == 2 or parts[2] == "":
                data = control.list_profiles(self.account, who.region)
            elif len(parts) == 3:
                data = control.get_profile(self.account, parts[2], who.region)
            else:
                raise AwsError("UnknownOperationException", "No such control-plane operation.")
            return _json(data, request_id)
        except AwsError as err:
            status, headers, body = error_response(err, request_id=request_id)
            return Response(body, status, headers=dict(headers))

    async def _call(
        self, request: Request, op: str, model_id: str, request_id: str, started: float
    ) -> Response:
        body = await _read_body(request, self.settings.max_body_bytes)
        who = authenticate(request, body, self.account, self.clock())
        target = resolve(
            model_id,
            who.region,
            models=self.models,
            app_profiles=self.account.app_profiles,
            request_id=request_id,
        )
        headers = {k.lower(): v for k, v in request.headers.items()}
        if op == "count-tokens":
            return _json(operations.count_tokens(target.model, body), request_id)
        call = operations.prepare(op, target.model, body, headers)
        streaming = op.endswith("stream")
        fault = pick_fault(
            headers.get("x-sim-error"),
            headers.get("x-sim-error-after"),
            self.rng,
            self.settings.error_rate,
            streaming,
        )
        if fault is not None and not fault.in_stream:
            raise fault.error
        timing = _timing(self.settings, headers)
        reply = operations.answer(
            call,
            target.model,
            self.cache,
            self.clock(),
            _int_header(headers, "x-sim-output-tokens"),
        )
        answer = Answer(op, model_id, target, who, call, reply, timing, request_id, started)
        if streaming:
            return self.streamer.response(answer, fault)
        return await self.streamer.unary(answer)

    async def flush_logs(self) -> None:
        if self.invocation_log is not None:
            await asyncio.to_thread(self.invocation_log.flush, self.clock())


def _route(request: Request) -> tuple[str, str]:
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    path = raw.decode("latin-1")
    if not path.startswith("/model/") or path.count("/") != 3:
        raise AwsError(
            "UnknownOperationException", f"No Bedrock runtime operation at {path[:80]!r}."
        )
    _, _, label, op = path.split("/")
    if op not in OPERATION_NAMES:
        raise operations.reject_unknown(op)
    if request.method != "POST":
        raise AwsError("UnknownOperationException", f"{request.method} is not supported here.")
    return op, label


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> AwsError:
    return AwsError(
        "ValidationException",
        f"The request body ({size} bytes or more) exceeds the maximum of {limit} bytes.",
    )


def _timing(settings: SimSettings, headers: dict[str, str]) -> tuple[float, float, float]:
    latency = _float_header(headers, "x-sim-latency-ms", settings.latency_ms)
    ttft = _float_header(headers, "x-sim-ttft-ms", settings.ttft_ms)
    tps = _float_header(headers, "x-sim-tokens-per-second", settings.tokens_per_second)
    return latency, ttft, tps


def _float_header(headers: dict[str, str], name: str, default: float) -> float:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < 3_600_000:
        raise AwsError("ValidationException", f"{name} must be a non-negative number")
    return value


def _int_header(headers: dict[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) > 1_000_000:
        raise AwsError("ValidationException", f"{name} must be an integer up to 1000000")
    return int(raw)


def _json(data: Any, request_id: str) -> Response:
    return JSONResponse(data, headers={"x-amzn-RequestId": request_id})


def create_app(
    settings: SimSettings,
    *,
    account: Account | None = None,
    clock: Clock = utc_now,
    rng: random.Random | None = None,
) -> ASGIApp:
    sim = Simulator(
        settings,
        account=account or load_account(settings.credentials_file, settings.account_id),
        clock=clock,
        rng=rng or random.Random(settings.seed),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        flusher = asyncio.create_task(_flush_forever(sim))
        try:
            yield
        finally:
            flusher.cancel()
            sim.flush_request_log()
            await sim.flush_logs()

    async def ping(request: Request) -> Response:
        return PlainTextResponse("ok")

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/{path:path}", sim.handle, methods=methods),
        ],
        lifespan=lifespan,
    )
    app.state.sim = sim
    return _FastPath(app, sim)


class _FastPath:
    """Runtime calls go straight to the simulator; everything else through Starlette's stack."""

    def __init__(self, app: Starlette, sim: Simulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/model/"):
            response = await self.sim.handle(Request(scope, receive))
            await response(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] == "/" and scope["method"] == "POST":
            response = await self.sim.sts(Request(scope, receive))
            await response(scope, receive, send)
        elif scope["type"] == "http" and scope["path"].startswith("/inference-profiles"):
            response = await self.sim.control(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _flush_forever(sim: Simulator) -> None:
    ticks = 0
    while True:
        await asyncio.sleep(0.2)
        sim.flush_request_log()
        ticks += 1
        if ticks % 5 == 0:
            await sim.flush_logs()
