"""The budget routes of the admin API on a real socket, over a real store (SQLite and
PostgreSQL): create, read, patch, delete, status, and every kind of bad input.

``changed`` and ``status`` are the seam to the gateway's enforcement: here they are small fakes
that count reloads and report a fixed status, so the routes are tested on their own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.routing import Mount

from spendgate.budgets.model import Budget
from spendgate.budgets.status import BudgetStatus
from spendgate.gateway.admin import admin_routes
from spendgate.gateway.budget_routes import budget_routes
from spendgate.store import Store, open_store
from spendgate.store.budgets import get_budget, list_budgets
from spendgate.store.schema import budgets

from helpers import serve

TOKEN = "admin-token-for-budget-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SALES = {
    "name": "sales on anthropic",
    "scope": "department=sales,model=anthropic.*",
    "metric": "cost_usd",
    "window": "calendar_month",
    "limit": "1500.50",
    "action": "downgrade",
    "downgrade_to": "amazon.nova-lite-v1:0",
    "thresholds": [50, 90],
    "timezone": "Europe/Paris",
}


@dataclass
class Gateway:
    """Stands in for the gateway: counts reloads, reports a fixed status per budget."""

    reloads: int = 0
    asked: list[str] = field(default_factory=list)
    now: datetime = T0

    async def changed(self) -> None:
        self.reloads += 1

    async def status(self, budget: Budget) -> BudgetStatus:
        self.asked.append(budget.id)
        return BudgetStatus(
            budget=budget,
            spent=Decimal("12.50"),
            reserved=Decimal("0.25"),
            window_start=T0,
            resets_at=T0 + timedelta(days=30),
            projected=Decimal("375.00"),
            now=T0 + timedelta(hours=1),
        )

    def clock(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/budgets.db"
    else:
        url = str(request.getfixturevalue("pg_url"))
    opened = open_store(url)
    with opened.engine.begin() as connection:
        connection.execute(budgets.delete())
    yield opened
    with opened.engine.begin() as connection:  # leave no budget to gateways sharing the database
        connection.execute(budgets.delete())
    opened.close()


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


@pytest.fixture
def api(store: Store, gateway: Gateway) -> Iterator[str]:
    routes = budget_routes(
        store, token=TOKEN, clock=gateway.clock, changed=gateway.changed, status=gateway.status
    )
    with serve(Starlette(routes=[Mount("/api/v1", routes=routes)])) as url:
        yield f"{url}/api/v1/budgets"


def error_of(response: requests.Response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


def create(api: str, **changes: Any) -> dict[str, Any]:
    r = requests.post(api, headers=AUTH, json={**SALES, **changes})
    assert r.status_code == 201, r.text
    doc: dict[str, Any] = r.json()
    return doc


# -- auth and routing -----------------------------------------------------------------------------


def test_without_an_admin_token_every_route_is_403(store: Store, gateway: Gateway) -> None:
    routes = budget_routes(
        store, token=None, clock=gateway.clock, changed=gateway.changed, status=gateway.status
    )
    with serve(Starlette(routes=[Mount("/api/v1", routes=routes)])) as url:
        for method, path in [("GET", ""), ("POST", ""), ("PATCH", "/x"), ("GET", "/x/status")]:
            r = requests.request(method, f"{url}/api/v1/budgets{path}", headers=AUTH, json={})
            status, code, message = error_of(r)
            assert (status, code) == (403, "forbidden") and "SPENDGATE_ADMIN_TOKEN" in message
    assert list_budgets(store) == [] and gateway.reloads == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
def test_a_missing_or_wrong_token_is_401(api: str, headers: dict[str, str]) -> None:
    for r in (requests.get(api, headers=headers), requests.post(api, headers=headers, json=SALES)):
        assert error_of(r)[:2] == (401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"


def test_other_methods_are_a_json_405_naming_the_allowed_ones(api: str) -> None:
    r = requests.put(api, headers=AUTH, json=SALES)
    assert error_of(r)[:2] == (405, "method_not_allowed")
    assert r.headers["allow"] == "GET, POST"
    r = requests.post(f"{api}/bgt_x/status", headers=AUTH)
    assert error_of(r)[:2] == (405, "method_not_allowed") and r.headers["allow"] == "GET"
    assert error_of(requests.put(api))[0] == 401  # auth comes first


def test_a_body_over_the_limit_is_413(api: str, store: Store) -> None:
    r = requests.post(api, headers=AUTH, json={**SALES, "name": "x" * 70_000})
    assert error_of(r)[:2] == (413, "payload_too_large")
    assert list_budgets(store) == []


def test_the_routes_join_the_admin_mount(store: Store, gateway: Gateway) -> None:
    budget_api = budget_routes(
        store, token=TOKEN, clock=gateway.clock, changed=gateway.changed, status=gateway.status
    )
    admin = admin_routes(store, token=TOKEN, clock=gateway.clock, extra_routes=budget_api)
    with serve(Starlette(routes=[admin])) as url:
        assert requests.get(f"{url}/api/v1/keys", headers=AUTH).json() == {"keys": []}
        assert requests.post(f"{url}/api/v1/budgets", headers=AUTH, json=SALES).status_code == 201
        assert len(requests.get(f"{url}/api/v1/budgets", headers=AUTH).json()["budgets"]) == 1
        assert error_of(requests.get(f"{url}/api/v1/budgets"))[0] == 401
        assert error_of(requests.get(f"{url}/api/v1/nope", headers=AUTH))[0] == 404


# -- create, read ---------------------------------------------------------------------------------


def test_create_stores_the_budget_and_reloads_the_gateway(
    api: str, store: Store, gateway: Gateway
) -> None:
    created = create(api)
    assert created["id"].startswith("bgt_")
    assert created == {
        "id": created["id"],
        "name": "sales on anthropic",
        "scope": {"department": "sales", "model": "anthropic.*"},
        "metric": "cost_usd",
        "window": "calendar_month",
        "limit": "1500.50",
        "action": "downgrade",
        "downgrade_to": "amazon.nova-lite-v1:0",
        "thresholds": [50, 90],
        "timezone": "Europe/Paris",
        "enabled": True,
        "rate_limit": False,
        "created_at": "2025-06-01T12:00:00Z",
        "updated_at": "2025-06-01T12:00:00Z",
    }
    assert gateway.reloads == 1
    stored = get_budget(store, created["id"])
    assert stored is not None and stored.limit == Decimal("1500.50")
    assert requests.get(f"{api}/{created['id']}", headers=AUTH).json() == created


def test_a_rate_limit_with_a_chosen_id_and_scope_object(api: str) -> None:
    created = create(
        api,
        id="rl-alice",
        name="alice per minute",
        scope={"user": "alice", "key": "key_123"},
        metric="requests",
        window="minute",
        limit=60,
        action="block",
        downgrade_to=None,
        thresholds=None,
        timezone=None,
        enabled=False,
    )
    assert created["id"] == "rl-alice" and created["rate_limit"] is True
    assert created["scope"] == {"user_id": "alice", "key_id": "key_123"}
    assert created["thresholds"] == [50, 80, 100] and created["timezone"] == "UTC"
    assert created["enabled"] is False and created["limit"] == "60"


def test_list_shows_every_budget_with_its_status(api: str, gateway: Gateway) -> None:
    assert requests.get(api, headers=AUTH).json() == {"budgets": []}
    first = create(api)
    gateway.now = T0 + timedelta(minutes=1)
    second = create(api, name="second", action="alert", downgrade_to=None)
    listed = requests.get(api, headers=AUTH).json()["budgets"]
    assert [b["id"] for b in listed] == [first["id"], second["id"]]  # oldest first
    assert {k: v for k, v in listed[0].items() if k != "status"} == first
    assert listed[0]["status"] == {
        "spent": "12.5",
        "reserved": "0.25",
        "remaining": "1487.75",
        "limit": "1500.5",
        "percent": "0.8",
        "window_start": "2025-06-01T12:00:00Z",
        "resets_at": "2025-07-01T12:00:00Z",
        "projected": "375",
        "thresholds_crossed": [],
        "as_of": "2025-06-01T13:00:00Z",
    }
    assert sorted(gateway.asked) == sorted([first["id"], second["id"]])


def test_status_is_the_gateways_live_status(api: str, gateway: Gateway) -> None:
    created = create(api)
    r = requests.get(f"{api}/{created['id']}/status", headers=AUTH)
    assert r.status_code == 200
    doc = r.json()
    assert doc["budget"] == {
        k: v for k, v in created.items() if k not in ("created_at", "updated_at")
    }
    assert (doc["spent"], doc["reserved"], doc["remaining"]) == ("12.5", "0.25", "1487.75")
    assert (doc["resets_at"], doc["projected"]) == ("2025-07-01T12:00:00Z", "375")
    assert gateway.asked == [created["id"]]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/status")],
)
def test_an_unknown_id_is_404(api: str, gateway: Gateway, method: str, path: str) -> None:
    r = requests.request(method, f"{api}/bgt_nope{path}", headers=AUTH, json={"limit": "5"})
    assert error_of(r) == (404, "not_found", "no budget with id 'bgt_nope'")
    assert gateway.reloads == 0 and gateway.asked == []


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": None}, "a budget needs a name"),
        ({"metric": "dollars"}, "metric 'dollars' is not one of: cost_usd, input_tokens"),
        ({"window": "fortnight"}, "window 'fortnight' is not one of"),
        ({"limit": "-5"}, "a budget limit must be a positive number"),
        ({"limit": "ten"}, "budget limit 'ten' is not a number"),
        ({"metric": "requests", "limit": "10.5"}, "a token or request limit must be a whole"),
        ({"action": "block"}, "downgrade_to goes with action downgrade"),
        ({"action": "explode"}, "action 'explode' is not one of: block, alert, downgrade"),
        ({"scope": "team"}, "scope part 'team' must look like field=value"),
        ({"scope": "planet=mars"}, "unknown scope field 'planet'"),
        ({"scope": ["department=sales"]}, "a scope is"),
        ({"thresholds": 50}, "alert thresholds are"),
        ({"thresholds": [0, 50]}, "alert thresholds are percentages between 1 and 1000"),
        ({"downgrade_to": 7}, "downgrade_to must be a model id"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"enabled": "yes"}, "enabled must be true or false"),
        ({"id": "has spaces"}, "budget id 'has spaces' is not valid"),
        ({"owner": "bob"}, "unknown budget field(s): owner"),
    ],
)
def test_bad_input_is_a_400_with_the_reason(
    api: str, store: Store, gateway: Gateway, changes: dict[str, Any], message: str
) -> None:
    r = requests.post(api, headers=AUTH, json={**SALES, **changes})
    status, code, text = error_of(r)
    assert (status, code) == (400, "bad_request")
    assert message in text
    assert list_budgets(store) == [] and gateway.reloads == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the request body is not valid JSON"),
        (b"[1, 2]", "the request body must be a JSON object"),
        (b"", "the request body is not valid JSON"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400(api: str, body: bytes, message: str) -> None:
    r = requests.post(api, headers={**AUTH, "Content-Type": "application/json"}, data=body)
    assert error_of(r)[:2] == (400, "bad_request") and message in error_of(r)[2]


def test_a_taken_name_or_id_is_a_409(api: str, store: Store, gateway: Gateway) -> None:
    first = create(api)
    r = requests.post(api, headers=AUTH, json=SALES)
    status, code, message = error_of(r)
    assert (status, code) == (409, "conflict")
    assert f"a budget named 'sales on anthropic' already exists ({first['id']})" in message
    r = requests.post(api, headers=AUTH, json={**SALES, "id": first["id"], "name": "other"})
    assert error_of(r)[:2] == (409, "conflict") and first["id"] in error_of(r)[2]
    assert len(list_budgets(store)) == 1 and gateway.reloads == 1


# -- patch and delete -----------------------------------------------------------------------------


def test_patch_changes_only_what_it_names(api: str, store: Store, gateway: Gateway) -> None:
    created = create(api, scope={"user": "alice", "key": "key_1", "provider": "anthropic"})
    gateway.now = T0 + timedelta(hours=2)
    r = requests.patch(f"{api}/{created['id']}", headers=AUTH, json={"limit": "99.99"})
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched == {
        **created,
        "limit": "99.99",
        "updated_at": "2025-06-01T14:00:00Z",
    }
    assert requests.get(f"{api}/{created['id']}", headers=AUTH).json() == patched
    assert gateway.reloads == 2


def test_patch_can_change_every_field(api: str) -> None:
    created = create(api)
    change = {
        "name": "renamed",
        "scope": "project=backend",
        "metric": "total_tokens",
        "window": "hour",
        "limit": 100000,
        "action": "block",
        "downgrade_to": None,
        "thresholds": "80,100",
        "timezone": "America/New_York",
        "enabled": False,
    }
    patched = requests.patch(f"{api}/{created['id']}", headers=AUTH, json=change).json()
    assert patched["scope"] == {"project": "backend"}
    assert (patched["metric"], patched["window"], patched["limit"]) == (
        "total_tokens",
        "hour",
        "100000",
    )
    assert (patched["action"], patched["downgrade_to"]) == ("block", None)
    assert patched["thresholds"] == [80, 100] and patched["timezone"] == "America/New_York"
    assert patched["enabled"] is False and patched["rate_limit"] is True
    assert patched["name"] == "renamed" and patched["created_at"] == created["created_at"]


def test_patching_the_action_away_from_downgrade_drops_its_target(api: str) -> None:
    created = create(api)
    patched = requests.patch(f"{api}/{created['id']}", headers=AUTH, json={"action": "alert"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["action"], patched.json()["downgrade_to"]) == ("alert", None)
    r = requests.patch(
        f"{api}/{created['id']}", headers=AUTH, json={"downgrade_to": "amazon.nova-micro-v1:0"}
    )
    assert error_of(r)[0] == 400 and "downgrade_to goes with action downgrade" in error_of(r)[2]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"limit": "0"}, "a budget limit must be a positive number"),
        ({"metric": "requests", "limit": "0.5"}, "whole number"),
        ({"id": "bgt_other"}, "a budget's id cannot change"),
        ({"rate_limit": False}, "unknown budget field(s): rate_limit"),
        ({"scope": 5}, "a scope is"),
        ({"name": ""}, "a budget needs a name"),
    ],
)
def test_a_bad_patch_is_a_400_and_changes_nothing(
    api: str, store: Store, gateway: Gateway, patch: dict[str, Any], message: str
) -> None:
    created = create(api)
    before = get_budget(store, created["id"])
    r = requests.patch(f"{api}/{created['id']}", headers=AUTH, json=patch)
    assert error_of(r)[:2] == (400, "bad_request") and message in error_of(r)[2]
    assert get_budget(store, created["id"]) == before and gateway.reloads == 1


def test_patching_to_a_taken_name_is_a_409(api: str, store: Store) -> None:
    create(api)
    other = create(api, name="other")
    r = requests.patch(f"{api}/{other['id']}", headers=AUTH, json={"name": SALES["name"]})
    assert error_of(r)[:2] == (409, "conflict") and "already exists" in error_of(r)[2]
    assert requests.patch(f"{api}/{other['id']}", headers=AUTH, json={"name": "other"}).ok


def test_delete_removes_the_budget_and_reloads(api: str, store: Store, gateway: Gateway) -> None:
    created = create(api)
    r = requests.delete(f"{api}/{created['id']}", headers=AUTH)
    assert r.status_code == 200 and r.json() == created
    assert gateway.reloads == 2 and list_budgets(store) == []
    assert error_of(requests.delete(f"{api}/{created['id']}", headers=AUTH))[0] == 404
    assert gateway.reloads == 2
    assert create(api)["name"] == SALES["name"]  # the name is free again


def test_money_never_travels_as_a_float(api: str) -> None:
    created = create(api, limit="0.000001")
    raw = requests.get(f"{api}/{created['id']}", headers=AUTH).text
    assert json.loads(raw)["limit"] == "0.000001"
    assert '"limit":"0.000001"' in raw.replace(" ", "")
