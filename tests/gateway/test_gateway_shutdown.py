"""SIGTERM with events still queued: ``spendgate serve`` drains them all before it exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from spendgate.gateway.keys import hash_key, key_prefix, new_key, new_key_id
from spendgate.settings import SimSettings
from spendgate.sim.account import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY
from spendgate.sim.app import create_app as create_sim
from spendgate.store.db import open_store
from spendgate.store.keys import KeyRecord

from helpers import free_port, serve

SPENDGATE = str(Path(sys.executable).with_name("spendgate"))
CALLS = 40


def test_sigterm_drains_every_queued_event(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    store = open_store(db)
    key = new_key()
    store.create_key(
        KeyRecord(
            id=new_key_id(),
            name="t",
            key_hash=hash_key(key),
            key_prefix=key_prefix(key),
            created_at=datetime.now(UTC),
        )
    )
    empty = tmp_path / "empty"
    empty.write_text("")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DEFAULT_SECRET_ACCESS_KEY,
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
        "SPENDGATE_GATEWAY_FLUSH_INTERVAL_S": "60",  # nothing is written until shutdown
        "SPENDGATE_GATEWAY_BATCH_SIZE": "100000",
        "SPENDGATE_GATEWAY_JOURNAL_PATH": str(tmp_path / "journal.jsonl"),
    }
    port = free_port()
    with serve(create_sim(SimSettings(log_requests=False))) as sim_url:
        log = (tmp_path / "gw.log").open("w")
        proc = subprocess.Popen(
            [SPENDGATE, "serve", "--port", str(port), "--db", db, "--bedrock-endpoint", sim_url],
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            url = f"http://127.0.0.1:{port}/model/amazon.nova-lite-v1%3A0/converse"
            body = {"messages": [{"role": "user", "content": [{"text": "hello"}]}]}
            with requests.Session() as s:
                deadline = time.monotonic() + 20
                while True:
                    try:
                        s.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                        break
                    except requests.ConnectionError:
                        assert time.monotonic() < deadline, (tmp_path / "gw.log").read_text()
                        time.sleep(0.1)
                for _ in range(CALLS):
                    r = s.post(url, json=body, headers={"X-Spendgate-Key": key}, timeout=10)
                    assert r.status_code == 200, r.text
            assert store.list_events(limit=1000) == []  # all still queued in the gateway
            proc.send_signal(signal.SIGTERM)
            # uvicorn re-raises SIGTERM after its graceful shutdown, as process managers expect
            assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    events = store.list_events(limit=1000)
    assert len(events) == CALLS
    assert all(e.status == "ok" and e.cost_usd and e.cost_usd > 0 for e in events)
    assert len({e.event_id for e in events}) == CALLS
    store.close()
