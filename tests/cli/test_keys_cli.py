"""``spendgate keys`` as a user runs it: a real process on a real database file."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from spendgate.errors import AwsError
from spendgate.gateway.keys import KeyRing
from spendgate.store import open_store

SPENDGATE = str(Path(sys.executable).with_name("spendgate"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SPENDGATE, "keys", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/keys.db"


def ok(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = run(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result


def create_json(db: str, *args: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ok("create", "--db", db, "--json", *args).stdout)
    return doc


def works(db: str, key: str) -> bool:
    """True when the gateway's key ring accepts ``key``."""
    with open_store(db) as store:
        ring = KeyRing(store.list_keys, store.get_key_by_hash)
        try:
            asyncio.run(ring.authenticate(key, datetime.now(UTC)))
        except AwsError:
            return False
    return True


def stored_bytes(db: str) -> bytes:
    """The database file and its WAL/journal companions, as stored on disk."""
    path = Path(db.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_create_prints_the_key_once_and_stores_only_its_hash(db: str) -> None:
    result = ok(
        "create", "--db", db, "--name", "ci-bot", "--model", "anthropic.*",
        "--model", "amazon.nova-lite-v1:0", "--department", "eng", "--project", "alpha",
        "--agent", "triage", "--user", "bob", "--application", "support",
        "--environment", "prod", "--cost-center", "cc-42", "--expires", "90d",
        "--role-arn", "arn:aws:iam::123456789012:role/alpha", "--external-id", "ext-1",
    )  # fmt: skip
    key = result.stdout.strip()
    assert key.startswith("sg-") and len(result.stdout.splitlines()) == 1
    assert "only time the key is shown" in result.stderr and key not in result.stderr
    assert works(db, key)
    assert key.encode() not in stored_bytes(db) and key[10:].encode() not in stored_bytes(db)
    (shown,) = json.loads(ok("list", "--db", db, "--json").stdout)
    assert shown["name"] == "ci-bot" and shown["prefix"] == key[:10]
    assert shown["allowed_models"] == ["anthropic.*", "amazon.nova-lite-v1:0"]
    assert shown["defaults"] == {
        "department": "eng",
        "project": "alpha",
        "agent": "triage",
        "user_id": "bob",
        "application": "support",
        "environment": "prod",
        "cost_center": "cc-42",
    }
    assert shown["role_arn"] == "arn:aws:iam::123456789012:role/alpha"
    assert shown["external_id"] == "ext-1"
    expires = datetime.fromisoformat(shown["expires_at"])
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)


def test_create_json_and_list_never_show_the_key(db: str) -> None:
    made = create_json(db, "--name", "svc", "--expires", "2099-01-01T00:00:00Z")
    assert made["key"].startswith("sg-") and made["id"].startswith("key_")
    assert made["expires_at"] == "2099-01-01T00:00:00Z" and made["status"] == "active"
    table = ok("list", "--db", db)
    as_json = ok("list", "--db", db, "--json")
    for output in (table.stdout, as_json.stdout, table.stderr):
        assert made["key"] not in output and made["key"][10:] not in output
    header, row = table.stdout.splitlines()
    for column in ("ID", "NAME", "PREFIX", "STATUS", "CREATED_AT", "EXPIRES_AT", "ROLE_ARN"):
        assert column in header
    assert made["id"] in row and made["prefix"] in row and "active" in row


def test_rotate_prints_a_new_key_and_the_old_one_stops_working(db: str) -> None:
    made = create_json(db, "--name", "svc")
    result = ok("rotate", made["id"], "--db", db)
    new = result.stdout.strip()
    assert new.startswith("sg-") and new != made["key"]
    assert not works(db, made["key"]) and works(db, new)
    rotated = json.loads(ok("rotate", made["id"], "--db", db, "--json").stdout)
    assert rotated["id"] == made["id"] and not works(db, new) and works(db, rotated["key"])
    assert all(k.encode() not in stored_bytes(db) for k in (made["key"], new, rotated["key"]))


def test_revoke_stops_a_key_and_says_so_twice(db: str) -> None:
    made = create_json(db, "--name", "gone")
    assert "Revoked API key" in ok("revoke", made["id"], "--db", db).stdout
    assert not works(db, made["key"])
    assert "already revoked" in ok("revoke", made["id"], "--db", db).stdout
    shown = json.loads(ok("revoke", made["id"], "--db", db, "--json").stdout)
    assert shown["status"] == "revoked" and shown["revoked_at"].endswith("Z")
    refused = run("rotate", made["id"], "--db", db)
    assert refused.returncode == 2 and "is revoked" in refused.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["revoke", "key_nope"], "no API key with id 'key_nope'"),
        (["rotate", "key_nope"], "no API key with id 'key_nope'"),
        (["create", "--name", "x", "--expires", "soon"], "a duration such as 90d"),
        (["create", "--name", "x", "--expires", "2001-01-01"], "is not in the future"),
        (["create", "--name", "x", "--department", "a!b"], "defaults.department must be"),
        (["create", "--name", "x", "--external-id", "abc"], "external_id needs a role_arn"),
        (["create", "--name", "x", "--role-arn", "arn:aws:s3:::b"], "not an IAM role ARN"),
        (["create"], "Missing option '--name'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(db: str, args: list[str], message: str) -> None:
    result = run(*args, "--db", db)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_or_unsupported_store_is_one_line(tmp_path: Path) -> None:
    down = run("list", "--db", "postgresql://nobody@127.0.0.1:1/spendgate")
    assert down.returncode == 1 and "cannot open the store" in down.stderr
    assert len(down.stderr.strip().splitlines()) == 1
    bad = run("list", "--db", "mysql://localhost/x")
    assert bad.returncode == 2 and "unsupported database" in bad.stderr
    for result in (down, bad):
        assert "Traceback" not in result.stderr


def test_the_default_store_is_the_one_spendgate_serve_uses(tmp_path: Path) -> None:
    env = {"SPENDGATE_HOME": str(tmp_path / "home")}
    made = json.loads(ok("create", "--name", "default", "--json", env=env).stdout)
    expected = f"sqlite:///{tmp_path / 'home' / 'spendgate.db'}"
    assert works(expected, made["key"])
    config = tmp_path / "spendgate.toml"
    other = tmp_path / "other.db"
    config.write_text(f'[gateway]\ndb = "sqlite:///{other}"\n')
    ok("create", "--name", "from-config", "--config", str(config), env=env)
    names = [k["name"] for k in json.loads(ok("list", "--json", "--config", str(config)).stdout)]
    assert names == ["from-config"]
    listed = json.loads(ok("list", "--json", env=env).stdout)
    assert [k["name"] for k in listed] == ["default"]
