"""Upstream client overhead: CPU and wall time per request, our Upstream vs aiohttp vs httpx.

A trivial ASGI upstream (uvicorn, httptools, uvloop) runs in a subprocess pinned to CPU 1
(``taskset -c 1``); this process pins itself to CPU 0 and, on uvloop, sends sequential POSTs of a
~1 KB JSON body with SigV4-shaped headers over one keep-alive connection, reading each ~200 B
response whole. CPU time is this process's ``time.process_time``, so the server is not counted.
Each round measures every client once (after a warm-up); the table shows the best round and the
spread over rounds. The "floor" row is no client at all (a bare Protocol writing canned bytes and
waiting for the reply): the loop and syscall cost every client pays on this machine. aiohttp is
only needed here (``pip install aiohttp``); missing clients are skipped.
Usage: ``.venv/bin/python bench/upstream_bench.py [--requests 3000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import uvicorn
import uvloop

from spendgate.gateway.upstream import Upstream, request_head

try:
    import aiohttp
    import yarl
except ImportError:  # aiohttp is not a spendgate dependency
    aiohttp = None
try:
    import httpx
except ImportError:
    httpx = None

PATH = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
BODY = json.dumps(
    {
        "messages": [
            {"role": "user", "content": [{"text": "Summarise our Q3 Bedrock spend. " * 24}]}
        ],
        "inferenceConfig": {"maxTokens": 256, "temperature": 0.2},
        "requestMetadata": {"department": "finance", "project": "q3-review"},
    }
).encode()
REPLY = json.dumps(
    {
        "output": {"message": {"role": "assistant", "content": [{"text": "Spend rose 12%."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 212, "outputTokens": 6, "totalTokens": 218},
        "metrics": {"latencyMs": 0},
    }
).encode()
Send = Callable[[], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The upstream: drain the request body, answer a Converse-shaped JSON reply."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(REPLY)).encode()),
        (b"x-amzn-requestid", b"4c1e3f2a-0d6b-4f6e-9a53-3b1f0c2d7e88"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": REPLY})


def serve(port: int) -> None:
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        lifespan="off",
        log_level="error",
        access_log=False,
    )


def signed_headers(port: int) -> list[tuple[str, str]]:
    digest = hashlib.sha256(BODY).hexdigest()
    return [
        ("Host", f"127.0.0.1:{port}"),
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        ("X-Amz-Date", "20250101T000000Z"),
        ("X-Amz-Content-Sha256", digest),
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIASPENDGATESIM0001/20250101/us-east-1/bedrock/"
            "aws4_request, SignedHeaders=accept;content-type;host;x-amz-content-sha256;"
            f"x-amz-date, Signature={digest}",
        ),
    ]


class Floor(asyncio.Protocol):
    """No HTTP client at all: write canned request bytes, wait for the reply's last byte."""

    def __init__(self) -> None:
        self.done: asyncio.Future[None] | None = None
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.tail = (self.tail + data)[-len(REPLY) :]
        if self.tail == REPLY and self.done is not None:
            self.done.set_result(None)


async def floor(url: str, headers: list[tuple[str, str]]) -> tuple[Send, Callable[[], Any]]:
    loop = asyncio.get_running_loop()
    port = int(url.split(":")[2].split("/", maxsplit=1)[0])
    _, proto = await loop.create_connection(Floor, "127.0.0.1", port)
    canned = request_head("POST", PATH, headers, BODY, "") + BODY
    transport = cast(asyncio.WriteTransport, proto.transport)

    async def send() -> None:
        proto.done = loop.create_future()
        transport.write(canned)
        await proto.done

    async def close() -> None:
        transport.close()

    return send, close


async def ours(url: str, headers: list[tuple[str, str]]) -> tuple[Send, Callable[[], Any]]:
    upstream = Upstream()

    async def send() -> None:
        response = await upstream.request("POST", url, headers, BODY)
        assert response.status == 200 and len(await response.read()) == len(REPLY)
        await response.aclose()

    return send, upstream.aclose


async def with_aiohttp(url: str, headers: list[tuple[str, str]]) -> tuple[Send, Callable[[], Any]]:
    session = aiohttp.ClientSession()
    target = yarl.URL(url, encoded=True)  # keep the percent-encoding as given
    plain = [(k, v) for k, v in headers if k != "Host"]

    async def send() -> None:
        async with session.post(target, data=BODY, headers=plain) as response:
            assert response.status == 200 and len(await response.read()) == len(REPLY)

    return send, session.close


async def with_httpx(url: str, headers: list[tuple[str, str]]) -> tuple[Send, Callable[[], Any]]:
    client = httpx.AsyncClient()
    plain = [(k, v) for k, v in headers if k != "Host"]

    async def send() -> None:
        response = await client.post(url, content=BODY, headers=plain)
        assert response.status_code == 200 and len(response.content) == len(REPLY)

    return send, client.aclose


async def measure(make: Any, url: str, headers: Any, requests: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per request after a warm-up."""
    send, close = await make(url, headers)
    try:
        for _ in range(300):
            await send()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(requests):
            await send()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await close()
    return cpu / requests * 1e6, wall / requests * 1e6


async def run(port: int, requests: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    url, headers = f"http://127.0.0.1:{port}{PATH}", signed_headers(port)
    clients: dict[str, Any] = {"floor (no HTTP client)": floor, "spendgate Upstream": ours}
    if aiohttp is not None:
        clients["aiohttp"] = with_aiohttp
    if httpx is not None:
        clients["httpx"] = with_httpx
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    for _ in range(rounds):
        for name, make in clients.items():
            results[name].append(await measure(make, url, headers, requests))
    return results


def start_server(port: int) -> subprocess.Popen[bytes]:
    command = ["taskset", "-c", "1", sys.executable, __file__, "--serve", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("upstream did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start_server(port)
    try:
        os.sched_setaffinity(0, {0})
        results = uvloop.run(run(port, args.requests, args.rounds))
    finally:
        server.terminate()
        server.wait()
    print(f"{args.requests} sequential POSTs ({len(BODY)} B up, {len(REPLY)} B down), uvloop,")
    print(f"client on CPU 0, uvicorn on CPU 1; best of {args.rounds} rounds (spread)\n")
    print(f"| {'client':<22} | {'CPU µs/req':>20} | {'wall µs/req':>20} |")
    print(f"|{'-' * 24}|{'-' * 22}:|{'-' * 22}:|")
    for name, rows in results.items():
        cpus, walls = sorted(c for c, _ in rows), sorted(w for _, w in rows)
        cpu = f"{cpus[0]:.0f} ({cpus[0]:.0f}–{cpus[-1]:.0f})"
        wall = f"{walls[0]:.0f} ({walls[0]:.0f}–{walls[-1]:.0f})"
        print(f"| {name:<22} | {cpu:>20} | {wall:>20} |")


if __name__ == "__main__":
    main()
