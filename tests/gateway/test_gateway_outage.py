"""The database goes away during traffic: calls keep working, events wait in the journal, and
every one of them is stored, once, when the database returns."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from gateway_env import running
from helpers import TLS, TcpProxy, free_port

PROMPT = "Reconcile invoice 7731 against the CUR"


def wait(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.postgres
def test_database_down_during_traffic_loses_nothing(
    tmp_path: Path, tls: TLS, own_pg_url: str
) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432), free_port())
    proxy.start()
    url = own_pg_url.replace(":5432/", f":{proxy.port}/")
    body = {"messages": [{"role": "user", "content": [{"text": PROMPT}]}]}
    path = "/model/amazon.nova-lite-v1%3A0/converse"
    try:
        with running(tmp_path, tls, db_url=url) as env:
            writer = env.app.state.gateway.writer
            for _ in range(10):
                assert env.post(path, body).status_code == 200
            wait(lambda: writer.stats.written >= 10)
            proxy.stop()  # the database is gone
            for _ in range(20):
                assert env.post(path, body).status_code == 200  # calls are not affected
            wait(lambda: writer.stats.journaled >= 20)
            journal = env.journal.read_bytes()
            assert journal and PROMPT.encode() not in journal
            proxy.start()  # it is back
            wait(lambda: writer.stats.written + writer.stats.replayed >= 30)
            # the session's database is shared with other tests: count this gateway's own calls
            events = env.store.list_events(filters={"key_id": env.key_id}, limit=1000)
    finally:
        proxy.stop()
    assert len(events) == 30 and len({e.event_id for e in events}) == 30
    assert all(e.status == "ok" and e.cost_usd for e in events)
