"""Shared test helpers (fixtures live in conftest.py): real servers on real sockets, real AWS
clients. Test modules import these as ``from helpers import ...``."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import uvicorn
from botocore.config import Config
from sqlalchemy import select

from spendgate.sim.account import DEFAULT_ACCESS_KEY_ID, DEFAULT_API_KEY, DEFAULT_SECRET_ACCESS_KEY
from spendgate.store.schema import ROLLUP_SPECS, rollup_tables, spend_marks

API_KEY = DEFAULT_API_KEY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any, *, tls: tuple[str, str] | None = None) -> Iterator[str]:
    """Run an ASGI app with uvicorn on a free loopback port in a thread; yield its base URL.

    With ``tls`` = (certfile, keyfile) it serves HTTPS."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="error",
        lifespan="on",
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Clock:
    """A settable UTC clock for the simulator (SigV4 skew, cache TTLs)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass(frozen=True)
class TLS:
    certfile: str
    keyfile: str
    cafile: str


_OPEN_CLIENTS: list[Any] = []


def tracked(client: Any) -> Any:
    """Remember an AWS client so the test's teardown closes it."""
    _OPEN_CLIENTS.append(client)
    return client


def close_clients() -> None:
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()


def bedrock_client(url: str, *, secret: str = DEFAULT_SECRET_ACCESS_KEY, **kwargs: Any) -> Any:
    """boto3's own bedrock-runtime client pointed at ``url`` (real SigV4, real parsing)."""
    retries = {"total_max_attempts": kwargs.pop("attempts", 1), "mode": "standard"}
    return tracked(
        boto3.client(
            "bedrock-runtime",
            region_name=kwargs.pop("region", "us-east-1"),
            endpoint_url=url,
            aws_access_key_id=kwargs.pop("access_key", DEFAULT_ACCESS_KEY_ID),
            aws_secret_access_key=secret,
            config=Config(retries=retries),
            **kwargs,
        )
    )


def service_available(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip without the server, except under CI=true where its absence is a failure."""
    if service_available(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: tests that need it must run)")
    pytest.skip(message)


class TcpProxy:
    """Forwards a local port to ``target``; ``stop()`` refuses new connections and cuts open
    ones (a database that went away), ``start()`` serves again on the same port."""

    def __init__(self, target: tuple[str, int], port: int) -> None:
        self.target = target
        self.port = port
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.05)
        self._listener = listener
        self._spawn(self._accept, listener)

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            for sock in self._sockets:
                _cut(sock)
            self._sockets.clear()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = [t for t in self._threads if t.is_alive()]

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with self._lock:
            self._sockets -= {source, sink}
        _cut(source)
        _cut(sink)


def _cut(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def marked_slots(engine: Any) -> dict[str, int]:
    """Asserts that every slot each rollup holds has a token in ``spend_marks``, and no other
    slot does; returns the number of slots per rollup."""
    with engine.connect() as connection:
        marks = set(connection.execute(select(spend_marks.c.name, spend_marks.c.bucket)))
        out = {}
        for spec in ROLLUP_SPECS:
            table = rollup_tables[spec.name]
            buckets = set(connection.execute(select(table.c.bucket).distinct()).scalars())
            assert {b for n, b in marks if n == spec.name} == buckets, spec.name
            out[spec.name] = len(buckets)
    return out
