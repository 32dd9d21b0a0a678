"""A running gateway in front of a running simulator, for end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from spendgate.bedrock.sigv4 import Credentials
from spendgate.events import Event
from spendgate.gateway.app import create_app
from spendgate.gateway.credentials import HttpClient, HttpResponse
from spendgate.gateway.keys import hash_key, key_prefix, new_key, new_key_id
from spendgate.gateway.upstream import Upstream
from spendgate.settings import GatewaySettings, SimSettings
from spendgate.sim.account import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY
from spendgate.sim.app import create_app as create_sim
from spendgate.store.db import Store, open_store
from spendgate.store.keys import KeyRecord

from helpers import TLS, close_clients, serve, tracked

SIM_CREDENTIALS = Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY)


@dataclass
class Env:
    gateway_url: str
    sim_url: str
    store: Store
    db_path: Path
    journal: Path
    key: str
    key_id: str
    tls: TLS
    app: Any
    extra_keys: dict[str, str] = field(default_factory=dict)

    def events(self, count: int, timeout: float = 5.0) -> list[Event]:
        """Wait (bounded) until at least ``count`` events are stored; newest first."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.store.list_events(limit=1000)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        key: str | None = "default",
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """POST to the gateway with ``requests``; the connection is closed before returning (an
        open TLS keep-alive would make the server wait 10 s to stop)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", "Connection": "close", **(headers or {})}
        if key is not None:
            sent["X-Spendgate-Key"] = self.key if key == "default" else key
        with requests.Session() as session:
            response = session.post(
                self.gateway_url + path, data=data, headers=sent, verify=self.tls.cafile, timeout=30
            )
            response.close()
            return response

    def add_key(self, name: str, **fields: Any) -> tuple[str, str]:
        key = new_key()
        record = KeyRecord(
            id=new_key_id(),
            name=name,
            key_hash=hash_key(key),
            key_prefix=key_prefix(key),
            created_at=datetime.now(UTC),
            **fields,
        )
        self.store.create_key(record)
        return record.id, key

    def boto3(self, monkeypatch: Any, key: str | None = None, **config: Any) -> Any:
        """boto3 configured only through the environment, as a user would."""
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", self.gateway_url)
        monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", key or self.key)
        monkeypatch.setenv("AWS_CA_BUNDLE", self.tls.cafile)
        retries = {"total_max_attempts": config.pop("attempts", 1), "mode": "standard"}
        return tracked(
            boto3.client(
                "bedrock-runtime", region_name="us-east-1", config=Config(retries=retries, **config)
            )
        )


@contextlib.contextmanager
def running(
    tmp: Path,
    tls: TLS,
    *,
    sim: SimSettings | None = None,
    credentials: Callable[[], Credentials | None] = lambda: SIM_CREDENTIALS,
    upstream_url: str | None = None,
    db_url: str | None = None,
    **settings: Any,
) -> Iterator[Env]:
    sim_settings = sim or SimSettings(log_requests=False, cache_min_tokens=64)
    with serve(create_sim(sim_settings)) as sim_url:
        db = tmp / "spendgate.db"
        store = open_store(db_url or f"sqlite:///{db}")
        base = GatewaySettings(
            db=db_url or f"sqlite:///{db}",
            journal_path=tmp / "journal.jsonl",
            bedrock_endpoint=upstream_url or sim_url,
            control_endpoint=sim_url,
            sts_endpoint=sim_url,
            flush_interval_s=0.05,
        )
        gw_settings = replace(base, **settings)
        app = create_app(gw_settings, store=store, credentials=credentials)
        key = new_key()
        record = KeyRecord(
            id=new_key_id(),
            name="e2e",
            key_hash=hash_key(key),
            key_prefix=key_prefix(key),
            created_at=datetime.now(UTC),
            defaults={"department": "research", "agent": "summariser"},
        )
        store.create_key(record)
        with serve(app, tls=(tls.certfile, tls.keyfile)) as url:
            try:
                yield Env(url, sim_url, store, db, tmp / "journal.jsonl", key, record.id, tls, app)
            finally:
                close_clients()  # an open TLS keep-alive makes the server wait 10 s to stop
        store.close()


class Recording:
    """An upstream client that passes requests on and remembers each one:
    (method, url, headers, body)."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http
        self.sent: list[tuple[str, str, list[tuple[str, str]], bytes]] = []

    async def request(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> HttpResponse:
        self.sent.append((method, url, list(headers), body))
        return await self.http.request(method, url, headers, body)


@contextlib.asynccontextmanager
async def http_client() -> AsyncIterator[Recording]:
    """The gateway's real upstream client, recording what it sends."""
    upstream = Upstream()
    try:
        yield Recording(upstream)
    finally:
        await upstream.aclose()
