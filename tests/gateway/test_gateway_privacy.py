"""Nothing secret at rest: no prompt or completion text, AWS secret or spendgate key is stored or
logged — only hashes and sizes. Proven by searching every file the gateway wrote."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway_env import running
from helpers import TLS

PROMPT = "Quarterly plan: acquire Initech for 42 million"
SECRET = "spendgate-sim-secret-access-key"


def test_no_text_secret_or_key_at_rest(
    tmp_path: Path, tls: TLS, monkeypatch: Any, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    messages = [{"role": "user", "content": [{"text": PROMPT}]}]
    aws = {"X-Aws-Access-Key-Id": "AKIASPENDGATESIM0001", "X-Aws-Secret-Access-Key": SECRET}
    with running(tmp_path, tls, credentials=lambda: None) as env:
        for op in ("converse", "converse-stream"):
            r = env.post(
                f"/model/amazon.nova-lite-v1%3A0/{op}", {"messages": messages}, headers=aws
            )
            assert r.status_code == 200
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": PROMPT}],
        }
        r = env.post(
            "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke",
            body,
            key=None,
            headers={"Authorization": f"Bearer {env.key}", **aws},
        )
        answer = r.json()["content"][0]["text"]
        env.post("/model/amazon.nova-lite-v1%3A0/converse", {"messages": 1}, headers=aws)
        events = env.events(4)
        assert len(events) == 4 and all(e.prompt_hash or e.status == "rejected" for e in events)
        assert all(e.request_bytes for e in events)
        env.store.fold()  # the rollup cache holds their slots: saved at shutdown
        env.store.rollup_cache.warm(datetime.now(UTC), 1)
        env.store.rollup_cache.wait()
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    logged = (caplog.text + "".join(capfd.readouterr())).encode()
    assert len(written) > 10_000  # the database really is here
    assert list(tmp_path.glob("spendgate-rollup-cache/*/gen-*/slots-*.arrow"))  # and the copies
    for needle in (PROMPT, SECRET, env.key, answer[:40]):
        assert needle.encode() not in written, f"{needle[:20]}... found in a file"
        assert needle.encode() not in logged, f"{needle[:20]}... found in the logs"
