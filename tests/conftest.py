"""Shared fixtures: real servers on real sockets, real AWS clients."""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import trustme
import uvicorn
from botocore.config import Config

from spendgate.settings import SimSettings
from spendgate.sim.account import DEFAULT_ACCESS_KEY_ID, DEFAULT_API_KEY, DEFAULT_SECRET_ACCESS_KEY
from spendgate.sim.app import create_app


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


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass(frozen=True)
class TLS:
    certfile: str
    keyfile: str
    cafile: str


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLS:
    """A throwaway CA and a localhost certificate (boto3 sends API keys only over HTTPS)."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    paths = TLS(str(folder / "cert.pem"), str(folder / "key.pem"), str(folder / "ca.pem"))
    cert.private_key_and_cert_chain_pem.write_to_path(paths.certfile)
    cert.private_key_pem.write_to_path(paths.keyfile)
    ca.cert_pem.write_to_path(paths.cafile)
    return paths


@pytest.fixture
def sim_factory(clock: Clock, tls: TLS) -> Iterator[Callable[..., str]]:
    """Start simulators with chosen settings (``https=True`` for TLS); stopped after the test."""
    stack: list[Any] = []

    def start(*, https: bool = False, **overrides: Any) -> str:
        settings = replace(SimSettings(log_requests=False, cache_min_tokens=64), **overrides)
        cm = serve(
            create_app(settings, clock=clock), tls=(tls.certfile, tls.keyfile) if https else None
        )
        url = cm.__enter__()
        stack.append(cm)
        return url

    yield start
    close_clients()  # before the servers stop, so they need not wait for idle connections
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


@pytest.fixture
def sim_url(sim_factory: Callable[..., str]) -> str:
    return sim_factory()


_OPEN_CLIENTS: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Close every AWS client a test made, so no socket is left for the garbage collector."""
    yield
    close_clients()
    gc.collect()  # a leaked socket then warns (and fails) in the test that leaked it


def close_clients() -> None:
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()


def tracked(client: Any) -> Any:
    _OPEN_CLIENTS.append(client)
    return client


def bedrock_client(url: str, *, secret: str = DEFAULT_SECRET_ACCESS_KEY, **kwargs: Any) -> Any:
    """boto3's own bedrock-runtime client pointed at ``url`` (real SigV4, real parsing)."""
    return tracked(
        boto3.client(
            "bedrock-runtime",
            region_name=kwargs.pop("region", "us-east-1"),
            endpoint_url=url,
            aws_access_key_id=kwargs.pop("access_key", DEFAULT_ACCESS_KEY_ID),
            aws_secret_access_key=secret,
            config=Config(
                retries={"total_max_attempts": kwargs.pop("attempts", 1), "mode": "standard"}
            ),
            **kwargs,
        )
    )


@pytest.fixture
def client(sim_url: str) -> Any:
    return bedrock_client(sim_url)


API_KEY = DEFAULT_API_KEY


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
