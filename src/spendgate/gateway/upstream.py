"""The one seam to the upstream: a lean HTTP/1.1 keep-alive connection pool (``Upstream``).

Connections are kept per (scheme, host, port), at most ``max_per_host`` of them; a request reuses
the newest idle one, opens a new one while under the limit, or waits for one to come free (within
the connect timeout). If a reused connection turns out dead before a single response byte (the
server closed it while it sat idle), the request is sent once more on a fresh connection, and in
no other case. Idle connections are closed after ``max_idle_s``. The wire work lives in
``spendgate.gateway.http1``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from spendgate.gateway.http1 import (
    Connection,
    Timeouts,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
)

__all__ = ["Timeouts", "Upstream", "UpstreamError", "UpstreamResponse", "UpstreamTimeout"]

NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
URL_CACHE = 4096  # parsed URLs kept (model × operation × region: a few hundred at most)


@dataclass(slots=True, eq=False)
class _Origin:
    """One (scheme, host, port) and its connections."""

    host: str  # to connect to (no IPv6 brackets)
    port: int
    tls: bool
    host_header: str
    label: str  # host:port, for error messages
    idle: deque[Connection] = field(default_factory=deque)  # oldest first
    busy: int = 0  # checked out or being opened
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    conns: set[Connection] = field(default_factory=set)


class Upstream:
    """HTTP/1.1 client for Bedrock (or the simulator); one per event loop."""

    def __init__(
        self,
        *,
        max_per_host: int = 64,
        timeouts: Timeouts = Timeouts(),  # noqa: B008 (frozen: one shared default is safe)
        ssl_context: ssl.SSLContext | None = None,
        max_idle_s: float = 60.0,
    ) -> None:
        if max_per_host < 1:
            raise ValueError("max_per_host must be at least 1")
        self._max = max_per_host
        self._timeouts = timeouts
        self._ssl = ssl_context
        self._max_idle = max_idle_s
        self._origins: dict[str, _Origin] = {}
        self._urls: dict[str, tuple[_Origin, str]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False
        self._created = 0
        self._reused = 0

    @property
    def stats(self) -> dict[str, int]:
        """Connection counts for /metrics (``in_use`` includes connections being opened)."""
        idle = sum(len(origin.idle) for origin in self._origins.values())
        in_use = sum(origin.busy for origin in self._origins.values())
        return {
            "open": idle + in_use,
            "idle": idle,
            "in_use": in_use,
            "created": self._created,
            "reused": self._reused,
        }

    async def request(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> UpstreamResponse:
        """Send a request and return the response once its head has arrived.

        The path and query of ``url`` are sent exactly as given. The caller must ``aclose()`` the
        response (or read it to the end)."""
        origin, target = self._split(url)
        request = request_head(method, target, headers, body, origin.host_header)
        head_only = method == "HEAD"
        conn = self._reuse(origin)
        reused = conn is not None
        if conn is None:
            conn, reused = await self._acquire(origin, fresh=False)
        try:
            return await conn.exchange(request, body, head_only, self._timeouts)
        except UpstreamError as exc:
            if not reused or exc.kind != "closed" or conn.received or self._closed:
                raise
        conn, _ = await self._acquire(origin, fresh=True)  # the keep-alive race: once more
        return await conn.exchange(request, body, head_only, self._timeouts)

    async def aclose(self) -> None:
        """Close every connection; requests still running fail with ``UpstreamError``."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        conns = [conn for origin in self._origins.values() for conn in origin.conns]
        for conn in conns:
            conn.abort(UpstreamError("closed", conn.origin, "the upstream client was closed"))
        for origin in self._origins.values():
            while origin.waiters:
                self._wake(origin)
        await asyncio.gather(*(conn.wait_closed() for conn in conns))

    # --- the pool --------------------------------------------------------------------------------

    def _reuse(self, origin: _Origin) -> Connection | None:
        """Check out the newest idle connection: the least likely to have been closed."""
        idle = origin.idle
        if not idle:
            return None
        conn = idle[-1]
        if conn.loop.time() - conn.idle_since >= self._max_idle:  # then all have expired
            while idle:
                idle[0].abort(UpstreamError("closed", origin.label, "idle too long"))
            return None
        idle.pop()
        conn.pooled = False
        origin.busy += 1
        self._reused += 1
        return conn

    async def _acquire(self, origin: _Origin, *, fresh: bool) -> tuple[Connection, bool]:
        """An idle connection (unless ``fresh``), a new one, or the next to come free."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeouts.connect
        while True:
            if self._closed:
                raise UpstreamError("closed", origin.label, "the upstream client is closed")
            idle = origin.idle
            if fresh:  # a retry: make room by closing idle connections, likely stale too
                while idle and origin.busy + len(idle) >= self._max:
                    idle[0].abort(UpstreamError("closed", origin.label, "made room"))
            elif conn := self._reuse(origin):
                return conn, True
            if origin.busy + len(idle) < self._max:
                return await self._connect(origin, loop, deadline), False
            await self._wait(origin, deadline)

    async def _wait(self, origin: _Origin, deadline: float) -> None:
        waiter = asyncio.get_running_loop().create_future()
        origin.waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except TimeoutError:
            raise UpstreamTimeout(
                "connect", origin.label, f"all {self._max} connections stayed busy"
            ) from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._wake(origin)  # we were woken but will not take the slot: pass it on
            raise

    async def _connect(
        self, origin: _Origin, loop: asyncio.AbstractEventLoop, deadline: float
    ) -> Connection:
        origin.busy += 1
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(
                    lambda: Connection(loop, origin.label, lambda c: self._on_done(origin, c)),
                    origin.host,
                    origin.port,
                    ssl=self._ssl_context() if origin.tls else None,
                    server_hostname=origin.host if origin.tls else None,
                )
        except BaseException as exc:
            origin.busy -= 1
            self._wake(origin)
            if isinstance(exc, TimeoutError):
                message = f"could not connect within {self._timeouts.connect:g}s"
                raise UpstreamTimeout("connect", origin.label, message) from exc
            if isinstance(exc, ssl.SSLError):
                raise UpstreamError("tls", origin.label, f"TLS failed: {exc}") from exc
            if isinstance(exc, OSError):
                raise UpstreamError("connect", origin.label, f"could not connect: {exc}") from exc
            raise
        self._created += 1
        origin.conns.add(conn)
        return conn

    def _on_done(self, origin: _Origin, conn: Connection) -> None:
        """A connection finished an exchange (reusable unless closed), or an idle one closed."""
        if conn.pooled:
            conn.pooled = False
            origin.idle.remove(conn)
        else:
            origin.busy -= 1
            if not conn.closed:
                conn.pooled = True
                conn.idle_since = conn.loop.time()
                origin.idle.append(conn)
                if self._closed:
                    conn.abort(UpstreamError("closed", origin.label, "the client was closed"))
                elif self._sweeper is None:
                    self._sweeper = conn.loop.call_later(self._max_idle, self._sweep, conn.loop)
        if conn.closed:
            origin.conns.discard(conn)
        self._wake(origin)

    def _wake(self, origin: _Origin) -> None:
        waiters = origin.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close connections idle for ``max_idle_s``; run again when the next one would expire."""
        self._sweeper = None
        now = loop.time()
        oldest: float | None = None
        for origin in self._origins.values():
            idle = origin.idle
            while idle and now - idle[0].idle_since >= self._max_idle:
                idle[0].abort(UpstreamError("closed", origin.label, "idle too long"))
            if idle and (oldest is None or idle[0].idle_since < oldest):
                oldest = idle[0].idle_since
        if oldest is not None:
            self._sweeper = loop.call_at(oldest + self._max_idle, self._sweep, loop)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    # --- URLs ------------------------------------------------------------------------------------

    def _split(self, url: str) -> tuple[_Origin, str]:
        """``url`` → (its origin, the request target exactly as written); memoised."""
        split = self._urls.get(url)
        if split is None:
            if len(self._urls) >= URL_CACHE:
                self._urls.clear()
            split = self._urls[url] = self._parse(url)
        return split

    def _parse(self, url: str) -> tuple[_Origin, str]:
        start = url.find("://") + 3
        end = len(url)
        for sep in "/?#":
            at = url.find(sep, start)
            if 0 <= at < end:
                end = at
        prefix, target = url[:end], url[end:]
        if not target.startswith("/"):
            target = "/" + target
        if "#" in target:
            target = target[: target.index("#")]
        origin = self._origins.get(prefix)
        if origin is None:
            origin = self._origins[prefix] = parse_origin(prefix)
        return origin, target


def parse_origin(prefix: str) -> _Origin:
    """``scheme://host[:port]`` → an ``_Origin`` (ValueError for anything else)."""
    scheme, _, authority = prefix.partition("://")
    scheme = scheme.lower()
    if scheme not in ("http", "https") or not authority or "@" in authority:
        raise ValueError(f"not an http(s) URL without credentials: {prefix!r}")
    default = 443 if scheme == "https" else 80
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad host in URL: {prefix!r}")
    else:
        host, _, port_text = authority.partition(":")
    if not host or (port_text and not port_text.isdigit()):
        raise ValueError(f"bad host or port in URL: {prefix!r}")
    port = int(port_text) if port_text else default
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default else f"{shown}:{port}"
    return _Origin(host, port, scheme == "https", host_header, f"{shown}:{port}")


def request_head(
    method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes, host: str
) -> bytes:
    """The request line and headers, adding Host and Content-Length when absent."""
    lines = [f"{method} {target} HTTP/1.1"]
    has_host = has_length = False
    for name, value in headers:
        size = len(name)
        if size == 4 and name.lower() == "host":
            has_host = True
        elif size == 14 and name.lower() == "content-length":
            has_length = True
        lines.append(f"{name}: {value}")
    if not has_host:
        lines.insert(1, f"Host: {host}")
    if not has_length and (body or method not in NO_BODY_METHODS):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("\r\n")
    text = "\r\n".join(lines)
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        raise ValueError("CR or LF in the method, path or a header")
    return text.encode("latin-1")
