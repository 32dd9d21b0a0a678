"""API keys: stored by hash only, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from spendgate.store import KeyRecord, Store
from spendgate.store.schema import api_keys

from store_helpers import T0

SECRET = "sg-live-4f1d9c2b7a8e6d5c4b3a2f1e0d9c8b7a"


def record_for(secret: str = SECRET, key_id: str = "key_abcdefgh", **fields: object) -> KeyRecord:
    values: dict[str, object] = {
        "id": key_id,
        "name": "research notebooks",
        "key_hash": hashlib.sha256(secret.encode()).hexdigest(),
        "key_prefix": secret[:10],
        "created_at": T0,
    }
    values.update(fields)
    return KeyRecord(**values)  # type: ignore[arg-type]


def test_create_and_find_by_hash(store: Store) -> None:
    record = record_for(
        expires_at=T0 + timedelta(days=30),
        allowed_models=("anthropic.claude-sonnet-4-5", "amazon.nova-pro-v1:0"),
        defaults={"department": "research", "project": "atlas"},
        role_arn="arn:aws:iam::123456789012:role/research",
        external_id="ext-1",
    )
    store.create_key(record)
    assert store.get_key_by_hash(record.key_hash) == record
    assert store.get_key_by_hash(hashlib.sha256(b"other").hexdigest()) is None


def test_minimal_key_round_trips(store: Store) -> None:
    record = record_for()
    store.create_key(record)
    back = store.get_key_by_hash(record.key_hash)
    assert back == record
    assert back is not None and back.allowed_models is None and back.defaults == {}


def test_empty_allow_list_is_not_any_model(store: Store) -> None:
    store.create_key(record_for(allowed_models=()))
    [back] = store.list_keys()
    assert back.allowed_models == ()


def test_list_oldest_first(store: Store) -> None:
    newer = record_for("s2", "key_bbbbbbbb", created_at=T0 + timedelta(hours=1))
    older = record_for("s1", "key_aaaaaaaa")
    store.create_key(newer)
    store.create_key(older)
    assert store.list_keys() == [older, newer]


def test_revoke(store: Store) -> None:
    store.create_key(record_for())
    at = (T0 + timedelta(days=1)).astimezone(timezone(timedelta(hours=-5)))
    assert store.revoke_key("key_abcdefgh", at) is True
    assert store.revoke_key("key_abcdefgh", at + timedelta(days=1)) is False  # already
    assert store.revoke_key("key_unknown0", at) is False
    [back] = store.list_keys()
    assert back.revoked_at == at and back.revoked_at.utcoffset() == timedelta(0)
    assert not back.active(at) and back.active(at - timedelta(seconds=1))


def test_rotate_replaces_hash_and_prefix(store: Store) -> None:
    store.create_key(record_for())
    new_secret = "sg-live-0000aaaa1111bbbb2222cccc3333dddd"
    new_hash = hashlib.sha256(new_secret.encode()).hexdigest()
    assert store.replace_key_hash("key_abcdefgh", new_hash, new_secret[:10]) is True
    assert store.get_key_by_hash(record_for().key_hash) is None
    rotated = store.get_key_by_hash(new_hash)
    assert rotated == replace(record_for(), key_hash=new_hash, key_prefix=new_secret[:10])
    assert store.replace_key_hash("key_unknown0", new_hash, "x") is False


def test_a_clear_key_is_never_stored(store: Store) -> None:
    with pytest.raises(ValueError, match="SHA-256 hex digest"):
        record_for(key_hash=SECRET)
    with pytest.raises(ValueError, match="at most the first 10"):
        record_for(key_prefix=SECRET)
    store.create_key(record_for())
    with pytest.raises(ValueError, match="SHA-256 hex digest"):
        store.replace_key_hash("key_abcdefgh", SECRET, SECRET[:10])
    with store.engine.connect() as connection:
        stored = " ".join(str(v) for v in connection.execute(select(api_keys)).one())
    assert SECRET not in stored and SECRET[:11] not in stored


def test_duplicate_hash_is_refused(store: Store) -> None:
    store.create_key(record_for())
    with pytest.raises(IntegrityError):
        store.create_key(record_for(key_id="key_other000"))


def test_record_checks() -> None:
    with pytest.raises(ValueError, match="unknown key defaults"):
        record_for(defaults={"prompt": "x"})
    with pytest.raises(ValueError, match="timezone"):
        record_for(created_at=T0.replace(tzinfo=None))
    record = record_for(expires_at=T0 + timedelta(days=1))
    assert record.active(T0) and not record.active(T0 + timedelta(days=1))
