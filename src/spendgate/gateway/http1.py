"""One HTTP/1.1 client connection: an asyncio ``Protocol`` around httptools' sans-IO parser.

``Connection`` carries one request/response exchange at a time; the pool in
``spendgate.gateway.upstream`` checks it out and gets it back through ``on_done``. Body chunks go
from ``data_received`` through the parser's ``on_body`` straight into the ``UpstreamResponse``'s
queue, and the consumer awaits one future per empty queue, never one task per chunk. Reading
pauses while more than ``HIGH_WATER`` bytes wait for a slow consumer and resumes below
``LOW_WATER``. A connection goes back to the pool the moment its response is complete (what is
left to read is already in the response); on any failure, timeout or cancellation it is aborted,
never reused.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import cast

import httptools

from spendgate.errors import SpendgateError

HIGH_WATER = 1 << 20  # pause reading when this many body bytes wait for the consumer...
LOW_WATER = HIGH_WATER // 4  # ...and resume once fewer than this are left
ONE_WRITE = 1 << 16  # bodies up to this size go out in one write with the head (one syscall)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long the upstream may take, in seconds."""

    connect: float = 5.0  # seconds to get a connection: a free pool slot, TCP and TLS
    first_byte: float = 300.0  # seconds from sending the request to the response head
    idle: float = 120.0  # longest gap between body chunks while streaming


class UpstreamError(SpendgateError):
    """No complete response from the upstream.

    ``kind`` is ``connect``, ``tls``, ``protocol`` or ``closed``; ``origin`` is ``host:port``.
    ``str()`` names the origin and the cause, never request headers or bodies."""

    def __init__(self, kind: str, origin: str, cause: str) -> None:
        super().__init__(f"upstream {origin}: {cause}")
        self.kind = kind
        self.origin = origin


class UpstreamTimeout(UpstreamError):
    """The upstream was too slow; ``kind`` is ``connect``, ``first_byte`` or ``idle``."""


class UpstreamResponse:
    """A response head, and its body as it arrives (chunked transfer coding already decoded)."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_done",
        "_error",
        "_idle",
        "_paused",
        "_waiter",
        "headers",
        "status",
    )

    def __init__(
        self, status: int, headers: list[tuple[str, str]], conn: Connection, idle: float
    ) -> None:
        self.status = status
        self.headers = headers  # as received: original case, in order
        self._conn: Connection | None = conn  # None once the body is complete or failed
        self._idle = idle
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._done = False
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<UpstreamResponse {self.status}>"

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive; raises ``UpstreamError`` if the body breaks off."""
        try:
            while True:
                if self._chunks:
                    yield self._take()
                elif self._done:
                    return
                else:
                    await self._more()
        except BaseException:
            self._abandon()
            raise

    async def read(self) -> bytes:
        """The whole body (what is left of it)."""
        parts: list[bytes] = []
        try:
            while not self._done:
                if self._chunks:  # keep draining, or back-pressure would stall the body
                    parts.extend(self._chunks)
                    self._chunks.clear()
                    self._drained(0)
                else:
                    await self._more()
        except BaseException:
            self._abandon()
            raise
        parts.extend(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return b"".join(parts)

    async def aclose(self) -> None:
        """Release the response: an unfinished body closes its connection (cancelling the call)."""
        self._abandon()
        self._chunks.clear()
        self._buffered = 0

    # --- fed by the connection -------------------------------------------------------------------

    def _feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered > HIGH_WATER and not self._paused and self._conn is not None:
            self._paused = True
            self._conn.pause_reading()
        self._wake()

    def _end(self, error: UpstreamError | None) -> None:
        conn, self._conn = self._conn, None
        if self._paused and conn is not None:
            self._paused = False
            conn.resume_reading()
        self._error = error
        self._done = error is None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- consumer side ---------------------------------------------------------------------------

    def _take(self) -> bytes:
        chunk = self._chunks.popleft()
        self._drained(self._buffered - len(chunk))
        return chunk

    def _drained(self, buffered: int) -> None:
        self._buffered = buffered
        if self._paused and buffered < LOW_WATER and self._conn is not None:
            self._paused = False
            self._conn.resume_reading()

    async def _more(self) -> None:
        if self._error is not None:
            raise self._error
        conn = cast(Connection, self._conn)  # neither done nor failed: still attached
        self._waiter = waiter = conn.loop.create_future()
        conn.expect("idle", self._idle)
        try:
            await waiter
        finally:
            self._waiter = None
            if self._conn is conn:  # once detached, the connection may serve another request
                conn.expect(None, 0.0)

    def _abandon(self) -> None:
        conn = self._conn
        if conn is not None:
            conn.abort(UpstreamError("closed", conn.origin, "the response was abandoned"))

    def _close_delimited(self) -> bool:
        coding = self.header("transfer-encoding")
        return self.header("content-length") is None and "chunked" not in (coding or "").lower()


class Connection(asyncio.Protocol):
    """One keep-alive connection to ``origin`` (``host:port``)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, origin: str, on_done: Callable[[Connection], None]
    ) -> None:
        self.loop = loop
        self.origin = origin
        self.closed = False  # aborted (by either side); never usable again
        self.pooled = False  # parked in the pool's idle list (the pool's flag)
        self.idle_since = 0.0
        self.received = False  # any byte since the last request went out
        self._on_done = on_done  # told when an exchange ends: reusable (not closed) or closed
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._headers: list[tuple[str, str]] = []
        self._head: asyncio.Future[UpstreamResponse] | None = None
        self._response: UpstreamResponse | None = None
        self._timer: asyncio.TimerHandle | None = None  # armed for ``_timer_at``
        self._timer_at = 0.0
        self._deadline = 0.0  # when the awaited ``_wait_for`` is overdue
        self._wait_for: str | None = None  # "first_byte", "idle" or None
        self._wait_s = 0.0
        self._idle = 0.0
        self._head_only = False
        self._complete = False
        self._keep_alive = False
        self._stray = False  # a response nobody asked for: the connection is out of step
        self._lost: asyncio.Future[None] | None = None

    async def exchange(
        self, request: bytes, body: bytes, head_only: bool, timeouts: Timeouts
    ) -> UpstreamResponse:
        """Send one request; return the response once its head has arrived."""
        self.received = False
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            raise UpstreamError("closed", self.origin, "the connection closed before the request")
        self._head_only = head_only
        self._idle = timeouts.idle
        head: asyncio.Future[UpstreamResponse] = self.loop.create_future()
        self._head = head
        try:
            if len(body) <= ONE_WRITE:
                transport.write(request + body)
            else:
                transport.write(request)
                transport.write(body)
            self.expect("first_byte", timeouts.first_byte)
            return await head
        except BaseException as exc:  # failed, timed out or cancelled: never reuse
            self.abort(UpstreamError("closed", self.origin, "the request was cancelled"))
            if isinstance(exc, OSError | RuntimeError):  # the transport refused the write
                cause = f"could not send the request ({exc})"
                raise UpstreamError("closed", self.origin, cause) from exc
            raise

    def abort(self, error: UpstreamError) -> None:
        """Close now; ``error`` goes to whoever waits for the head or the body."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.set_exception(error)
        response, self._response = self._response, None
        if response is not None:
            response._end(error)
        if self._transport is not None:
            self._transport.abort()
        self._on_done(self)

    def expect(self, what: str | None, seconds: float) -> None:
        """Time out unless ``what`` (``first_byte``, ``idle``) arrives within ``seconds``.

        Per-request timers are costly (uvloop: a libuv handle and an extra loop pass per cancel),
        so one timer per connection is re-armed lazily: it fires, sees a later deadline and waits
        again, at most once per timeout period."""
        self._wait_for = what
        if what is None:
            return
        self._wait_s = seconds
        self._deadline = deadline = self.loop.time() + seconds
        if self._timer is None or self._timer_at > deadline:
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        what = self._wait_for
        if what is None or self.closed:
            return
        if self.loop.time() < self._deadline:
            self._arm(self._deadline)
            return
        late = "no response" if what == "first_byte" else "no body data"
        self.abort(UpstreamTimeout(what, self.origin, f"{late} within {self._wait_s:g}s"))

    async def wait_closed(self) -> None:
        if self._transport is not None:
            self._lost = self.loop.create_future()
            await self._lost

    def pause_reading(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()

    # --- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self.abort(UpstreamError("protocol", self.origin, f"malformed response ({exc})"))
            return
        if self._complete:
            self._finish()
        if self._stray:
            self.abort(UpstreamError("protocol", self.origin, "a response arrived unasked"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        response = self._response
        if response is not None and exc is None and response._close_delimited():
            self._keep_alive = False
            self._finish()  # the body ran to the end of the connection
            return
        cause = f": {exc}" if exc else ""
        what = "in the middle of the response" if self.received else "without responding"
        self.abort(UpstreamError("closed", self.origin, f"the connection closed {what}{cause}"))

    # --- httptools callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = []
        self._stray = self._head is None

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            return  # 1xx: informational; the real head follows
        head, self._head = self._head, None
        if head is None or head.done():
            return  # unsolicited (or the request was cancelled): data_received aborts
        self._wait_for = None
        self._response = response = UpstreamResponse(status, self._headers, self, self._idle)
        self._headers = []  # trailers, if any, are dropped
        if self._head_only:  # llhttp cannot know a HEAD response has no body
            self._complete = True
            self._keep_alive = self._parser.should_keep_alive()
        head.set_result(response)

    def on_body(self, body: bytes) -> None:
        if self._response is not None and not self._complete:
            self._response._feed(body)

    def on_message_complete(self) -> None:
        if self._response is not None and not self._complete:
            self._keep_alive = self._parser.should_keep_alive()  # before llhttp resets its flags
            self._complete = True

    # --- internals -------------------------------------------------------------------------------

    def _finish(self) -> None:
        self._complete = False
        self._wait_for = None
        response, self._response = self._response, None
        if response is not None:
            response._end(None)
        if self._head_only:
            self._parser = httptools.HttpResponseParser(self)  # it still expects the body
        if self._keep_alive and not self.closed:
            self._on_done(self)
        else:
            self.abort(UpstreamError("closed", self.origin, "the server closes the connection"))
