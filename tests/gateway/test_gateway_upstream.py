"""The upstream client on real sockets: uvicorn for well-behaved servers, raw asyncio servers for
misbehaving ones, every test on both the default event loop and uvloop."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar
from urllib.parse import parse_qs

import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

from spendgate.errors import SpendgateError
from spendgate.gateway.http1 import HIGH_WATER, Connection
from spendgate.gateway.upstream import (
    Timeouts,
    Upstream,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
    parse_origin,
    request_head,
)

from helpers import TLS, free_port, serve

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]
BIG = 5_000_000
ARN_PATH = (
    "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile"
    "%2Fabc123/converse-stream"
)


def pattern(size: int) -> bytes:
    return random.Random(size).randbytes(size)


# --- a well-behaved upstream: uvicorn ---------------------------------------------------------


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    path, status, headers, reply = scope["path"], 200, [(b"content-type", b"application/json")], b""
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(int(query["n"])):
            await send({"type": "http.response.body", "body": b"chunk%d;" % i, "more_body": True})
            await asyncio.sleep(float(query["delay"]))
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/bytes":
        reply = pattern(int(query["size"]))
    elif path == "/status":
        status = int(query["code"])
    else:  # /echo, /close, /slow
        await asyncio.sleep(float(query.get("delay", 0)))
        reply = json.dumps(
            {
                "method": scope["method"],
                "raw_path": scope["raw_path"].decode("latin-1"),
                "query_string": scope["query_string"].decode("latin-1"),
                "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                "length": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
                "client_port": scope["client"][1],
            }
        ).encode()
    if path == "/close":
        headers.append((b"connection", b"close"))
    if status not in (204, 304):
        headers.append((b"content-length", str(len(reply)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": reply})


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def https_url(tls: TLS) -> Iterator[str]:
    with serve(app, tls=(tls.certfile, tls.keyfile)) as url:
        yield url


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run[Any]:
    factory = uvloop.new_event_loop if request.param == "uvloop" else None

    def runner(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as loop:
            return loop.run(coro)

    return runner


@asynccontextmanager
async def upstream(**kwargs: Any) -> AsyncIterator[Upstream]:
    client = Upstream(**kwargs)
    try:
        yield client
    finally:
        await client.aclose()


async def fetch(up: Upstream, method: str, url: str, body: bytes = b"") -> tuple[int, bytes]:
    response = await up.request(method, url, [("Accept", "*/*")], body)
    try:
        return response.status, await response.read()
    finally:
        await response.aclose()


async def echo(up: Upstream, url: str, method: str = "GET", body: bytes = b"") -> dict[str, Any]:
    status, data = await fetch(up, method, url, body)
    assert status == 200
    return dict(json.loads(data))


# --- misbehaving upstreams: raw asyncio servers in the test's own loop ---------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class RawServer:
    """Runs ``handler(reader, writer, connection_number)`` for each connection; counts them."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests = 0
        self.disconnects = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        self.writers.append(writer)
        self.connections += 1
        with suppress(ConnectionError, asyncio.IncompleteReadError):
            await self.handler(reader, writer, self.connections)
        writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        """One request's head (its Content-Length body is read and dropped)."""
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        self.requests += 1
        return head

    async def until_eof(self, reader: asyncio.StreamReader) -> None:
        """Swallow input until the client disconnects."""
        with suppress(ConnectionError):
            while await reader.read(65536):
                pass
        self.disconnects += 1

    async def until_disconnected(self, count: int = 1) -> None:
        async with asyncio.timeout(5):
            while self.disconnects < count:
                await asyncio.sleep(0.01)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


# --- behaviour --------------------------------------------------------------------------------


def test_get_and_post_with_content_length(run: Run[None], http_url: str) -> None:
    async def main() -> None:
        async with upstream() as up:
            response = await up.request("GET", f"{http_url}/echo?x=1", [("Accept", "a/b")], b"")
            assert response.status == 200
            assert response.header("CONTENT-TYPE") == "application/json"
            assert ("content-type", "application/json") in response.headers
            got = json.loads(await response.read())
            await response.aclose()
            headers = dict(got["headers"])
            assert got["method"] == "GET" and got["query_string"] == "x=1"
            assert headers["host"] == http_url.removeprefix("http://")
            assert "content-length" not in headers and headers["accept"] == "a/b"

            got = await echo(up, f"{http_url}/echo", "POST", b'{"a": 1}')
            assert got["method"] == "POST" and got["length"] == 8
            assert dict(got["headers"])["content-length"] == "8"
            assert got["sha256"] == hashlib.sha256(b'{"a": 1}').hexdigest()

    run(main())


@pytest.mark.parametrize(
    "target",
    [
        "/model/us.anthropic.x-v2%3A0/converse",
        ARN_PATH,
        "/a/./b/../c%2f%7E%20?q=%2F&x=a+b",
    ],
)
def test_the_path_reaches_the_server_byte_for_byte(
    run: Run[None], http_url: str, target: str
) -> None:
    async def main() -> None:
        async with upstream() as up:
            got = await echo(up, f"{http_url}{target}", "POST", b"{}")
        path, _, query = target.partition("?")
        assert got["raw_path"] == path and got["query_string"] == query

    run(main())


def test_caller_host_and_content_length_are_kept() -> None:
    head = request_head("POST", "/p", [("host", "signed:1"), ("Content-Length", "2")], b"{}", "h")
    assert head == b"POST /p HTTP/1.1\r\nhost: signed:1\r\nContent-Length: 2\r\n\r\n"
    head = request_head("GET", "/p", [("X-A", "b")], b"", "h:81")
    assert head == b"GET /p HTTP/1.1\r\nHost: h:81\r\nX-A: b\r\n\r\n"
    for bad in [("X-A", "b\r\nX-Injected: 1"), ("X-A\n", "b")]:
        with pytest.raises(ValueError, match="CR or LF"):
            request_head("GET", "/p", [bad], b"", "h")
    with pytest.raises(ValueError, match="CR or LF"):
        request_head("GET", "/p HTTP/1.1\r\nX: y", [], b"", "h")


def test_urls() -> None:
    https = parse_origin("https://bedrock-runtime.us-east-1.amazonaws.com")
    assert (https.host, https.port, https.tls) == (
        "bedrock-runtime.us-east-1.amazonaws.com",
        443,
        True,
    )
    assert https.host_header == "bedrock-runtime.us-east-1.amazonaws.com"
    v6 = parse_origin("http://[::1]:8787")
    assert (v6.host, v6.port, v6.host_header, v6.label) == ("::1", 8787, "[::1]:8787", "[::1]:8787")
    for bad in ["ftp://h", "http://", "http://user:pw@h", "http://h:x", "h/path"]:
        with pytest.raises(ValueError):
            parse_origin(bad)
    up = Upstream()
    assert up._split("http://h:1?q=1")[1] == "/?q=1"
    assert up._split("http://h:1")[1] == "/"
    assert up._split("http://h:1/a%2Fb#frag")[1] == "/a%2Fb"
    assert issubclass(UpstreamTimeout, UpstreamError) and issubclass(UpstreamError, SpendgateError)


def test_a_chunked_stream_is_yielded_as_it_arrives(run: Run[None], http_url: str) -> None:
    async def main() -> None:
        async with upstream() as up:
            started = time.monotonic()
            response = await up.request("GET", f"{http_url}/stream?n=3&delay=0.3", [], b"")
            assert response.header("transfer-encoding") == "chunked"
            arrivals = [(time.monotonic() - started, c) async for c in response.aiter_bytes()]
            await response.aclose()
        assert b"".join(c for _, c in arrivals) == b"chunk0;chunk1;chunk2;"
        assert arrivals[0][0] < 0.25  # the first chunk came long before the last
        assert arrivals[-1][0] - arrivals[0][0] >= 0.5

    run(main())


def test_a_chunk_is_delivered_before_the_server_sends_the_next(run: Run[None]) -> None:
    async def main() -> None:
        got_first = asyncio.Event()

        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            writer.write(CHUNKED + b"5\r\nfirst\r\n")
            await got_first.wait()  # only once the client has seen the first chunk
            writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
            await server.until_eof(reader)

        async with RawServer(handler) as server, upstream(timeouts=Timeouts(idle=3)) as up:
            response = await up.request("GET", f"{server.url}/", [], b"")
            chunks = []
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                got_first.set()
            assert chunks == [b"first", b"second"]
            assert response.headers == [("Transfer-Encoding", "chunked")]  # as received
            assert up.stats["idle"] == 1

    run(main())


def test_keep_alive_connections_are_reused(run: Run[None], http_url: str) -> None:
    async def main() -> None:
        async with upstream() as up:
            ports = {(await echo(up, f"{http_url}/echo"))["client_port"] for _ in range(5)}
            assert len(ports) == 1  # one server-side connection
            assert up.stats == {"open": 1, "idle": 1, "in_use": 0, "created": 1, "reused": 4}

    run(main())


def test_a_connection_the_server_closed_while_idle_is_replaced(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            writer.write(OK)  # keep-alive, then the server's idle timeout closes it

        async with RawServer(handler) as server, upstream() as up:
            assert await fetch(up, "GET", f"{server.url}/") == (200, b"ok")
            await asyncio.sleep(0.1)
            assert up.stats["open"] == 0
            assert await fetch(up, "GET", f"{server.url}/") == (200, b"ok")
            assert server.connections == 2 and up.stats["created"] == 2

    run(main())


def test_the_keep_alive_race_is_retried_once_on_a_fresh_connection(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, number: int) -> None:
            await server.read_request(reader)
            if number == 1:
                writer.write(OK)
                await server.read_request(reader)  # closes as the second request arrives
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
            await server.until_eof(reader)

        async with RawServer(handler) as server, upstream() as up:
            assert await fetch(up, "POST", f"{server.url}/", b"{}") == (200, b"ok")
            assert await fetch(up, "POST", f"{server.url}/", b"{}") == (200, b"fresh")
            assert server.connections == 2 and server.requests == 3
            assert up.stats["created"] == 2 and up.stats["reused"] == 1

    run(main())


def test_the_retry_happens_only_once(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, number: int) -> None:
            await server.read_request(reader)
            if number == 1:
                writer.write(OK)
                await server.read_request(reader)  # then every connection dies unanswered

        async with RawServer(handler) as server, upstream() as up:
            await fetch(up, "GET", f"{server.url}/")
            with pytest.raises(UpstreamError) as caught:
                await fetch(up, "GET", f"{server.url}/")
            assert caught.value.kind == "closed" and server.connections == 2

    run(main())


@pytest.mark.parametrize("reply", [b"", b"HTTP/1.1 200 OK\r\nContent-"])
def test_no_retry_on_a_new_connection_or_after_response_bytes(run: Run[None], reply: bytes) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, number: int) -> None:
            await server.read_request(reader)
            if number == 1 and reply:  # a reused connection that dies mid-head
                writer.write(OK)
                await server.read_request(reader)
            writer.write(reply)

        async with RawServer(handler) as server, upstream() as up:
            if reply:
                await fetch(up, "GET", f"{server.url}/")
            with pytest.raises(UpstreamError) as caught:
                await fetch(up, "GET", f"{server.url}/")
            assert caught.value.kind == "closed" and server.connections == 1
            assert server.url.removeprefix("http://") in str(caught.value)

    run(main())


def test_connection_close_is_honoured(run: Run[None], http_url: str) -> None:
    async def main() -> None:
        async with upstream() as up:
            first = await echo(up, f"{http_url}/close")
            assert up.stats["open"] == 0
            second = await echo(up, f"{http_url}/close")
            assert first["client_port"] != second["client_port"] and up.stats["created"] == 2

    run(main())


def test_connection_refused(run: Run[None]) -> None:
    async def main() -> None:
        port = free_port()
        async with upstream() as up:
            with pytest.raises(UpstreamError) as caught:
                await up.request("GET", f"http://127.0.0.1:{port}/x", [("X-Secret", "s3")], b"")
            assert caught.value.kind == "connect" and not isinstance(caught.value, UpstreamTimeout)
            assert f"127.0.0.1:{port}" in str(caught.value) and "s3" not in str(caught.value)
            assert up.stats["open"] == 0

    run(main())


def test_a_server_that_never_answers_times_out_at_first_byte(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            await server.until_eof(reader)

        async with RawServer(handler) as server, upstream(timeouts=Timeouts(first_byte=0.2)) as up:
            started = time.monotonic()
            with pytest.raises(UpstreamTimeout) as caught:
                await up.request("POST", f"{server.url}/", [], b"{}")
            assert caught.value.kind == "first_byte" and 0.15 < time.monotonic() - started < 2
            await server.until_disconnected()
            assert server.connections == 1 and up.stats["open"] == 0

    run(main())


def test_a_stalled_stream_times_out_idle(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            writer.write(CHUNKED + b"5\r\nhello\r\n")
            await server.until_eof(reader)

        async with RawServer(handler) as server, upstream(timeouts=Timeouts(idle=0.2)) as up:
            response = await up.request("GET", f"{server.url}/", [], b"")
            chunks = []
            with pytest.raises(UpstreamTimeout) as caught:
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
            assert caught.value.kind == "idle" and chunks == [b"hello"]
            await server.until_disconnected()

    run(main())


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
        CHUNKED + b"a\r\n0123456789\r\n",
    ],
)
def test_a_server_dying_mid_body_is_an_error(run: Run[None], reply: bytes) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            writer.write(reply)

        async with RawServer(handler) as server, upstream() as up:
            response = await up.request("GET", f"{server.url}/", [], b"")
            chunks = []
            with pytest.raises(UpstreamError) as caught:
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
            assert caught.value.kind == "closed" and chunks == [b"0123456789"]
            response = await up.request("GET", f"{server.url}/", [], b"")
            with pytest.raises(UpstreamError):
                await response.read()
            assert up.stats["open"] == 0

    run(main())


def test_a_close_delimited_body_ends_at_eof(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nall of")
            await asyncio.sleep(0.05)
            writer.write(b" it")

        async with RawServer(handler) as server, upstream() as up:
            assert await fetch(up, "GET", f"{server.url}/") == (200, b"all of it")
            assert up.stats["open"] == 0

    run(main())


def test_a_malformed_response_is_a_protocol_error(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 2x0 Nope\r\n\r\n")
            await server.until_eof(reader)

        async with RawServer(handler) as server, upstream() as up:
            with pytest.raises(UpstreamError) as caught:
                await up.request("GET", f"{server.url}/", [], b"")
            assert caught.value.kind == "protocol"

    run(main())


def test_head_204_and_304_have_no_body(run: Run[None], http_url: str) -> None:
    async def main() -> None:
        async with upstream(timeouts=Timeouts(idle=2)) as up:
            response = await up.request("HEAD", f"{http_url}/bytes?size=100", [], b"")
            assert response.header("content-length") == "100"
            assert await response.read() == b""
            await response.aclose()
            assert await fetch(up, "GET", f"{http_url}/status?code=204") == (204, b"")
            assert await fetch(up, "GET", f"{http_url}/status?code=304") == (304, b"")
            assert await fetch(up, "GET", f"{http_url}/bytes?size=3") == (200, pattern(3))
            assert up.stats["created"] == 1 and up.stats["reused"] == 3

    run(main())


def test_aclose_before_the_body_is_read_closes_the_socket(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + bytes(65536))
            await server.until_eof(reader)

        async with RawServer(handler) as server, upstream() as up:
            response = await up.request("GET", f"{server.url}/", [], b"")
            assert up.stats["in_use"] == 1
            await response.aclose()
            await server.until_disconnected()
            assert up.stats["open"] == 0

    run(main())


def test_cancelling_mid_stream_closes_the_socket(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            writer.write(CHUNKED)
            eof = asyncio.ensure_future(server.until_eof(reader))
            while not eof.done():
                writer.write(b"4\r\ndata\r\n")
                await asyncio.sleep(0.02)

        async with RawServer(handler) as server, upstream() as up:
            first = asyncio.Event()

            async def consume() -> None:
                response = await up.request("GET", f"{server.url}/", [], b"")
                async for _ in response.aiter_bytes():
                    first.set()

            task = asyncio.ensure_future(consume())
            await first.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await server.until_disconnected()
            assert up.stats["open"] == 0

    run(main())


def test_cancelling_while_waiting_for_the_head_closes_the_socket(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            await server.until_eof(reader)

        async with RawServer(handler) as server, upstream() as up:
            task = asyncio.ensure_future(up.request("POST", f"{server.url}/", [], b"{}"))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await server.until_disconnected()
            assert up.stats["open"] == 0 and server.connections == 1

    run(main())


def test_https_with_a_private_ca(run: Run[None], https_url: str, tls: TLS) -> None:
    async def main() -> None:
        context = ssl.create_default_context(cafile=tls.cafile)
        async with upstream(ssl_context=context) as up:
            ports = {(await echo(up, f"{https_url}/echo"))["client_port"] for _ in range(3)}
            assert len(ports) == 1 and up.stats["reused"] == 2
        async with upstream() as up:  # the system CAs do not know this one
            with pytest.raises(UpstreamError) as caught:
                await up.request("GET", f"{https_url}/echo", [], b"")
            assert caught.value.kind == "tls"

    run(main())


def test_large_bodies_both_ways(run: Run[None], http_url: str) -> None:
    async def main() -> None:
        body = pattern(BIG)
        async with upstream() as up:
            got = await echo(up, f"{http_url}/echo", "POST", body)
            assert got["length"] == BIG and got["sha256"] == hashlib.sha256(body).hexdigest()
            assert await fetch(up, "GET", f"{http_url}/bytes?size={BIG}") == (200, body)
            response = await up.request("GET", f"{http_url}/bytes?size={BIG}", [], b"")
            assert b"".join([chunk async for chunk in response.aiter_bytes()]) == body

    run(main())


def test_a_slow_consumer_pauses_reading(run: Run[None]) -> None:
    async def main() -> None:
        size = 16 * HIGH_WATER
        body = pattern(size)

        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body)
            await server.until_eof(reader)

        async with RawServer(handler) as server, upstream() as up:
            response = await up.request("GET", f"{server.url}/", [], b"")
            await asyncio.sleep(0.3)  # the consumer dawdles; the server has sent it all
            assert HIGH_WATER < response._buffered <= HIGH_WATER + (1 << 18)
            assert await response.read() == body

    run(main())


def test_concurrent_requests_share_a_bounded_pool(run: Run[None], http_url: str) -> None:
    async def main() -> None:
        async with upstream(max_per_host=10) as up:
            replies = await asyncio.gather(
                *(echo(up, f"{http_url}/slow?delay=0.01") for _ in range(100))
            )
            assert len(replies) == 100 and len({r["client_port"] for r in replies}) <= 10
            stats = up.stats
            assert stats["created"] <= 10 and stats["open"] <= 10 and stats["in_use"] == 0
            assert stats["created"] + stats["reused"] == 100

    run(main())


def test_a_request_waits_for_a_busy_connection_to_come_free(run: Run[None]) -> None:
    async def main() -> None:
        release = asyncio.Event()

        async def handler(reader: Any, writer: Any, _: int) -> None:
            while True:
                head = await server.read_request(reader)
                writer.write(CHUNKED + b"2\r\nhi\r\n")
                if head.startswith(b"GET /hold "):
                    await release.wait()
                writer.write(b"0\r\n\r\n")

        async with RawServer(handler) as server, upstream(max_per_host=1) as up:
            held = await up.request("GET", f"{server.url}/hold", [], b"")
            gave_up = asyncio.ensure_future(fetch(up, "GET", f"{server.url}/"))
            waiting = asyncio.ensure_future(fetch(up, "GET", f"{server.url}/"))
            await asyncio.sleep(0.1)
            assert not waiting.done() and up.stats["in_use"] == 1
            gave_up.cancel()  # a waiter that leaves the queue does not take the slot with it
            release.set()
            assert await held.read() == b"hi"
            assert await waiting == (200, b"hi")
            with pytest.raises(asyncio.CancelledError):
                await gave_up
            assert server.connections == 1 and up.stats["reused"] == 1

    run(main())


def test_a_pool_slot_that_never_frees_times_out(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            writer.write(CHUNKED + b"2\r\nhi\r\n")  # and never finishes
            await server.until_eof(reader)

        timeouts = Timeouts(connect=0.2)
        async with RawServer(handler) as server, upstream(max_per_host=1, timeouts=timeouts) as up:
            held = await up.request("GET", f"{server.url}/", [], b"")
            with pytest.raises(UpstreamTimeout) as caught:
                await up.request("GET", f"{server.url}/", [], b"")
            assert caught.value.kind == "connect"
            await held.aclose()
            await server.until_disconnected()

    run(main())


def test_idle_connections_expire(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            writer.write(OK)
            await server.until_eof(reader)

        async with RawServer(handler) as server, upstream(max_idle_s=0.1) as up:
            await fetch(up, "GET", f"{server.url}/")
            assert up.stats["idle"] == 1
            await server.until_disconnected()
            assert up.stats["open"] == 0

    run(main())


def test_closing_the_client_fails_requests_in_flight(run: Run[None]) -> None:
    async def main() -> None:
        async def handler(reader: Any, writer: Any, _: int) -> None:
            await server.read_request(reader)
            await server.until_eof(reader)

        async with RawServer(handler) as server:
            up = Upstream()
            task = asyncio.ensure_future(up.request("GET", f"{server.url}/", [], b""))
            await asyncio.sleep(0.1)
            await up.aclose()
            with pytest.raises(UpstreamError) as caught:
                await task
            assert caught.value.kind == "closed"
            with pytest.raises(UpstreamError):
                await up.request("GET", f"{server.url}/", [], b"")

    run(main())


# --- the parser glue, sans socket: any split of the bytes gives the same response ---------------


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass


RESPONSES = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: 1\r\n\r\nhello world", b"hello world"),
    (CHUNKED + b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", b"hello world"),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", b"hi"),
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(RESPONSES), st.lists(st.integers(1, 80), max_size=8))
def test_any_split_of_the_response_gives_the_same_result(
    case: tuple[bytes, bytes], cuts: list[int]
) -> None:
    wire, body = case
    done: list[Connection] = []

    async def main() -> UpstreamResponse:
        conn = Connection(asyncio.get_running_loop(), "h:1", done.append)
        conn.connection_made(FakeTransport())
        pending = asyncio.ensure_future(
            conn.exchange(b"GET / HTTP/1.1\r\n\r\n", b"", False, Timeouts())
        )
        await asyncio.sleep(0)
        rest = wire
        for cut in [*cuts, len(wire)]:
            piece, rest = rest[:cut], rest[cut:]
            if piece:
                conn.data_received(piece)
        response = await pending
        assert await response.read() == body
        return response

    response = asyncio.run(main())
    assert response.status == 200 and done and not done[0].closed  # back to the pool, reusable
    assert response.header("x-trailer") is None
