"""A key's role is assumed per user, and the same owner shows up in Bedrock's own logs.

The gateway calls STS AssumeRole (the simulator's) with RoleSessionName = the user and the
attribution as session tags, signs the Bedrock call with the temporary credentials, and the
simulator's invocation logs then name ``assumed-role/<role>/<user>`` — the identity CUR 2.0's
``line_item_iam_principal`` carries."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from spendgate.settings import SimSettings

from gateway_env import running
from helpers import TLS

HELLO = {"messages": [{"role": "user", "content": [{"text": "Rank the search experiments."}]}]}
ROLE = "arn:aws:iam::123456789012:role/BedrockSearchTeam"


def test_role_session_per_user_reaches_bedrock_logs(tmp_path: Path, tls: TLS) -> None:
    logs = tmp_path / "logs"
    with running(
        tmp_path, tls, sim=SimSettings(log_requests=False, invocation_log_dir=logs)
    ) as env:
        _, key = env.add_key("search", role_arn=ROLE, defaults={"project": "search"})
        for user in ("alice", "alice", "bob"):
            r = env.post(
                "/model/amazon.nova-lite-v1%3A0/converse", HELLO, key=key, headers={"X-User": user}
            )
            assert r.status_code == 200, r.text
        events = env.events(3)
    expected = {
        u: f"arn:aws:sts::123456789012:assumed-role/BedrockSearchTeam/{u}" for u in ("alice", "bob")
    }
    assert {e.user_id: e.iam_principal for e in events} == expected
    records = [
        json.loads(line)
        for f in logs.rglob("*.json.gz")
        for line in gzip.decompress(f.read_bytes()).splitlines()
    ]
    assert sorted(r["identity"]["arn"] for r in records) == sorted(
        [expected["alice"], expected["alice"], expected["bob"]]
    )


def test_a_role_the_account_refuses_is_access_denied(tmp_path: Path, tls: TLS) -> None:
    with running(tmp_path, tls) as env:
        _, key = env.add_key("other", role_arn="arn:aws:iam::999999999999:role/NotOurs")
        r = env.post("/model/amazon.nova-lite-v1%3A0/converse", HELLO, key=key)
        assert r.status_code == 403 and r.headers["x-amzn-ErrorType"] == "AccessDeniedException"
        assert "could not assume role arn:aws:iam::999999999999:role/NotOurs" in r.json()["message"]
        (event,) = env.events(1)
        assert event.status == "rejected" and event.error_type == "AccessDeniedException"
