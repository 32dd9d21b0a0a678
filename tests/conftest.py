"""Shared fixtures. Helpers that tests import live in tests/helpers.py."""

from __future__ import annotations

import contextlib
import gc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
import trustme

from spendgate.settings import SimSettings
from spendgate.sim.app import create_app

from helpers import TLS, Clock, bedrock_client, close_clients, require_service, serve

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_ADMIN = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres"


@contextlib.contextmanager
def _database() -> Iterator[str]:
    """A new PostgreSQL database, dropped afterwards."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    name = f"spendgate_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session; dropped at the end."""
    with _database() as url:
        yield url


@pytest.fixture
def own_pg_url() -> Iterator[str]:
    """A PostgreSQL database for this test alone (state other tests leave cannot leak in)."""
    with _database() as url:
        yield url


@pytest.fixture
def clock() -> Clock:
    return Clock()


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


@pytest.fixture
def client(sim_url: str) -> Any:
    return bedrock_client(sim_url)


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Close every AWS client a test made, so no socket is left for the garbage collector."""
    yield
    close_clients()
    gc.collect()  # a leaked socket then warns (and fails) in the test that leaked it
