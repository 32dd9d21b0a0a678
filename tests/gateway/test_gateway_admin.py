"""The admin API (``/api/v1``) on a real socket: auth, keys, events, and bad input.

Most tests serve a bare Starlette app built from ``admin_routes`` over a real store; the last
ones run the whole gateway against the simulator, so a key made by the API meters real calls.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.routing import Route

from spendgate.bedrock.sigv4 import Credentials
from spendgate.errors import AwsError
from spendgate.events import Event
from spendgate.gateway.admin import admin_routes
from spendgate.gateway.app import create_app
from spendgate.gateway.keys import KeyRing
from spendgate.settings import GatewaySettings
from spendgate.sim.account import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY
from spendgate.store import Store, open_store
from spendgate.store.schema import api_keys, events

from helpers import serve

TOKEN = "admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class OffLoopStore(Store):
    """A store that fails if it is read on a running event loop."""

    def list_events(self, **kwargs: Any) -> list[Event]:
        assert_off_loop()
        return super().list_events(**kwargs)

    def list_keys(self) -> list[Any]:
        assert_off_loop()
        return super().list_keys()


def assert_off_loop() -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/admin.db")
    yield OffLoopStore(opened.engine)
    opened.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/events.db"
    else:
        url = str(request.getfixturevalue("pg_url"))
    opened = open_store(url)
    with opened.engine.begin() as connection:
        connection.execute(events.delete())
        connection.execute(api_keys.delete())
    yield OffLoopStore(opened.engine)
    opened.close()


class Reloads:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def reloads() -> Reloads:
    return Reloads()


@pytest.fixture
def api(store: Store, reloads: Reloads) -> Iterator[str]:
    app = Starlette(
        routes=[
            admin_routes(store, token=TOKEN, clock=lambda: datetime.now(UTC), keys_changed=reloads)
        ]
    )
    with serve(app) as url:
        yield f"{url}/api/v1"


def works(store: Store, key: str) -> bool:
    """True when the gateway's key ring accepts ``key`` right now."""
    ring = KeyRing(store.list_keys, store.get_key_by_hash)
    try:
        asyncio.run(ring.authenticate(key, datetime.now(UTC)))
    except AwsError:
        return False
    return True


def error_of(response: requests.Response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


# -- auth ---------------------------------------------------------------------------------------


def test_without_an_admin_token_every_route_is_403_saying_how_to_enable_it(store: Store) -> None:
    app = Starlette(routes=[admin_routes(store, token=None, clock=lambda: T0)])
    with serve(app) as url:
        for method, path in [("GET", "/events"), ("GET", "/keys"), ("POST", "/keys")]:
            r = requests.request(method, f"{url}/api/v1{path}", headers=AUTH, json={})
            status, code, message = error_of(r)
            assert (status, code) == (403, "forbidden")
            assert "SPENDGATE_ADMIN_TOKEN" in message


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong", "not-bearer"],
)
def test_a_missing_or_wrong_token_is_401(api: str, headers: dict[str, str]) -> None:
    r = requests.get(f"{api}/keys", headers=headers)
    assert error_of(r)[:2] == (401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in r.text


def test_unknown_routes_and_methods_answer_json_errors(api: str) -> None:
    assert error_of(requests.get(f"{api}/nope", headers=AUTH))[:2] == (404, "not_found")
    r = requests.put(f"{api}/keys", headers=AUTH)
    assert error_of(r)[:2] == (405, "method_not_allowed")
    assert "GET" in r.headers["allow"] or "POST" in r.headers["allow"]
    assert error_of(requests.get(f"{api}/nope"))[0] == 401  # auth comes first


# -- keys ---------------------------------------------------------------------------------------


def test_create_shows_the_key_once_and_it_works(api: str, store: Store, reloads: Reloads) -> None:
    body = {
        "name": "ci-bot",
        "expires_at": "30d",
        "allowed_models": ["anthropic.*", "amazon.nova-lite-v1:0"],
        "defaults": {"department": "eng", "project": "alpha", "user_id": "bob"},
        "role_arn": "arn:aws:iam::123456789012:role/bedrock-alpha",
        "external_id": "ext-123",
    }
    r = requests.post(f"{api}/keys", headers=AUTH, json=body)
    assert r.status_code == 201
    created = r.json()
    key = created["key"]
    assert key.startswith("sg-") and created["prefix"] == key[:10]
    assert created["status"] == "active" and created["id"].startswith("key_")
    assert created["allowed_models"] == body["allowed_models"]
    assert created["defaults"] == body["defaults"]
    assert created["role_arn"] == body["role_arn"] and created["external_id"] == "ext-123"
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert created["created_at"].endswith("Z")
    assert works(store, key) and reloads.count == 1

    listed = requests.get(f"{api}/keys", headers=AUTH)
    assert listed.status_code == 200
    assert key not in listed.text and key[10:] not in listed.text
    (shown,) = listed.json()["keys"]
    assert shown == {k: v for k, v in created.items() if k != "key"}
    one = requests.get(f"{api}/keys/{created['id']}", headers=AUTH).json()
    assert one == shown


def test_rotate_issues_a_new_key_and_the_old_one_stops_working(
    api: str, store: Store, reloads: Reloads
) -> None:
    created = requests.post(f"{api}/keys", headers=AUTH, json={"name": "svc"}).json()
    r = requests.post(f"{api}/keys/{created['id']}/rotate", headers=AUTH)
    assert r.status_code == 200
    rotated = r.json()
    assert rotated["id"] == created["id"] and rotated["key"] != created["key"]
    assert rotated["prefix"] == rotated["key"][:10]
    assert not works(store, created["key"]) and works(store, rotated["key"])
    assert reloads.count == 2
    assert error_of(requests.post(f"{api}/keys/key_nope/rotate", headers=AUTH))[:2] == (
        404,
        "not_found",
    )


def test_revoke_stops_a_key_is_idempotent_and_revoked_keys_cannot_rotate(
    api: str, store: Store
) -> None:
    created = requests.post(f"{api}/keys", headers=AUTH, json={"name": "gone"}).json()
    first = requests.delete(f"{api}/keys/{created['id']}", headers=AUTH)
    assert first.status_code == 200 and first.json()["status"] == "revoked"
    assert first.json()["revoked_at"].endswith("Z") and "key" not in first.json()
    assert not works(store, created["key"])
    again = requests.delete(f"{api}/keys/{created['id']}", headers=AUTH)
    assert again.status_code == 200 and again.json()["revoked_at"] == first.json()["revoked_at"]
    status, code, message = error_of(
        requests.post(f"{api}/keys/{created['id']}/rotate", headers=AUTH)
    )
    assert (status, code) == (409, "conflict") and "revoked" in message
    assert error_of(requests.delete(f"{api}/keys/key_nope", headers=AUTH))[0] == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"name": "x", "colour": "red"}', "unknown key field colour"),
        (b"{}", "name is required"),
        (b'{"name": "x", "expires_at": "soon"}', "a duration such as 90d"),
        (b'{"name": "x", "expires_at": "2020-01-01T00:00:00Z"}', "is not in the future"),
        (b'{"name": "x", "expires_at": "2030-01-01T00:00:00"}', "has no timezone"),
        (b'{"name": "x", "allowed_models": []}', "allowed_models must be a list of 1"),
        (b'{"name": "x", "defaults": {"team": "a"}}', "unknown default team"),
        (b'{"name": "x", "defaults": {"project": "a!b"}}', "defaults.project must be"),
        (b'{"name": "x", "role_arn": "arn:aws:s3:::bucket"}', "not an IAM role ARN"),
        (b'{"name": "x", "external_id": "abc"}', "external_id needs a role_arn"),
    ],
)
def test_bad_key_input_is_a_precise_400(api: str, body: bytes, message: str) -> None:
    r = requests.post(
        f"{api}/keys", headers={**AUTH, "Content-Type": "application/json"}, data=body
    )
    status, code, text = error_of(r)
    assert (status, code) == (400, "bad_request")
    assert message in text


def test_an_oversized_body_is_refused_declared_or_streamed(api: str) -> None:
    big = json.dumps({"name": "x" * 70_000}).encode()
    r = requests.post(f"{api}/keys", headers=AUTH, data=big)
    assert error_of(r)[:2] == (413, "payload_too_large")
    assert "65536" in error_of(r)[2]
    chunked = requests.post(f"{api}/keys", headers=AUTH, data=iter([big[:40_000], big[40_000:]]))
    assert error_of(chunked)[:2] == (413, "payload_too_large")


# -- events -------------------------------------------------------------------------------------


def seed(store: Store) -> list[Event]:
    made = [
        Event(
            ts=T0 + timedelta(minutes=i),
            operation="Converse",
            model_id="amazon.nova-lite-v1:0",
            base_model="amazon.nova-lite-v1:0",
            department="eng" if i % 2 else "sales",
            input_tokens=10 * i,
            cost_usd=Decimal("0.00012") * i,
            tags={"team": "a"},
        )
        for i in range(5)
    ]
    store.insert_events(made)
    return made


def get_events(api: str, **params: str) -> dict[str, Any]:
    r = requests.get(f"{api}/events", headers=AUTH, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    doc: dict[str, Any] = r.json()
    return doc


def test_events_newest_first_with_times_filters_and_money_as_strings(any_store: Store) -> None:
    seed(any_store)
    app = Starlette(routes=[admin_routes(any_store, token=TOKEN, clock=lambda: T0)])
    with serve(app) as url:
        api = f"{url}/api/v1"
        doc = get_events(api)
        assert doc["count"] == 5
        assert [e["input_tokens"] for e in doc["events"]] == [40, 30, 20, 10, 0]
        newest = doc["events"][0]
        assert newest["ts"] == "2025-06-01T12:04:00Z" and newest["cost_usd"] == "0.00048"
        assert newest["tags"] == {"team": "a"} and newest["department"] == "sales"
        assert doc["events"][-1]["cost_usd"] == "0"
        window = get_events(api, since="2025-06-01T12:01:00Z", until="2025-06-01T14:03:00+02:00")
        assert [e["input_tokens"] for e in window["events"]] == [20, 10]
        assert [e["input_tokens"] for e in get_events(api, department="eng")["events"]] == [30, 10]
        assert get_events(api, limit="2")["count"] == 2
        assert get_events(api, since="2025-06-02")["count"] == 0
        both = get_events(api, department="eng", model_id="amazon.nova-lite-v1:0", limit="1")
        assert [e["input_tokens"] for e in both["events"]] == [30]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "since must be an ISO-8601 time"),
        ("until=2025-06-01T12:00:00", "until '2025-06-01T12:00:00' has no timezone"),
        ("since=2025-06-02&until=2025-06-01", "since must be earlier than until"),
        ("limit=0", "limit must be a whole number from 1 to 10000, not '0'"),
        ("limit=10001", "not '10001'"),
        ("limit=ten", "not 'ten'"),
        ("colour=red", "unknown query parameter 'colour'"),
        ("department=a&department=b", "department is given more than once"),
        ("department=", "filter department needs a value"),
    ],
)
def test_bad_event_queries_are_a_precise_400(api: str, query: str, message: str) -> None:
    status, code, text = error_of(requests.get(f"{api}/events?{query}", headers=AUTH))
    assert (status, code) == (400, "bad_request")
    assert message in text


# -- the whole gateway --------------------------------------------------------------------------


@pytest.fixture
def gateway(sim_factory: Callable[..., str], tmp_path: Path) -> Iterator[str]:
    settings = GatewaySettings(
        db=f"sqlite:///{tmp_path}/gw.db",
        bedrock_endpoint=sim_factory(),
        admin_token=TOKEN,
        flush_interval_s=0.05,
        journal_path=tmp_path / "journal.jsonl",
    )
    app = create_app(
        settings,
        store=open_store(settings.db),
        credentials=lambda: Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY),
    )
    with serve(app) as url:
        yield url


def converse(url: str, key: str, **headers: str) -> requests.Response:
    body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    return requests.post(
        f"{url}/model/amazon.nova-lite-v1:0/converse",
        json=body,
        headers={"Authorization": f"Bearer {key}", **headers},
    )


def test_keys_made_by_the_api_meter_calls_and_rotation_applies_at_once(gateway: str) -> None:
    api = f"{gateway}/api/v1"
    made = requests.post(
        f"{api}/keys", headers=AUTH, json={"name": "t", "defaults": {"project": "alpha"}}
    ).json()
    assert converse(gateway, made["key"]).status_code == 200
    rotated = requests.post(f"{api}/keys/{made['id']}/rotate", headers=AUTH).json()
    old = converse(gateway, made["key"])
    assert old.status_code == 403 and "unknown API key" in old.text
    assert converse(gateway, rotated["key"]).status_code == 200
    requests.delete(f"{api}/keys/{made['id']}", headers=AUTH)
    assert "was revoked" in converse(gateway, rotated["key"]).text
    for _ in range(100):  # the writer flushes every 50 ms
        if get_events(api)["count"] == 4:
            break
        time.sleep(0.05)
    found = get_events(api, key_id=made["id"], status="ok")
    assert found["count"] == 2
    assert all(e["project"] == "alpha" and Decimal(e["cost_usd"]) > 0 for e in found["events"])
    assert get_events(api, status="rejected")["count"] == 2  # the rotated and the revoked key


def test_every_admin_route_is_documented(store: Store) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    mount = admin_routes(store, token=TOKEN, clock=lambda: T0)
    for route in mount.routes:
        assert isinstance(route, Route) and route.methods
        for method in sorted(route.methods - {"HEAD"}):
            assert f"| `{method}` | `/api/v1{route.path}` |" in text, (method, route.path)
