"""The analytics REST API on a real socket (the whole web app: gateway + web routes), on SQLite
and PostgreSQL: hand-computed answers, auth, precise 400s, exports, the OpenAPI document."""

from __future__ import annotations

import csv
import importlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import requests

from spendgate.events import Event
from spendgate.settings import GatewaySettings
from spendgate.store import Store, open_store
from spendgate.store.schema import metadata
from spendgate.web.app import create_app

from helpers import serve

TOKEN = "analytics-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DAY = datetime(2026, 3, 10, tzinfo=UTC)
RANGE = {"since": "2026-03-10", "until": "2026-03-12T00:00:00Z"}
SONNET = ("anthropic.claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
NOVA = ("amazon.nova-lite", "amazon.nova-lite-v1:0")


def _event(hours: float, model: tuple[str, str], cost: str | None, **fields: Any) -> Event:
    return Event(
        ts=DAY + timedelta(hours=hours),
        base_model=model[0],
        model_id=model[1],
        provider=model[0].split(".")[0],
        region="us-east-1",
        cost_usd=None if cost is None else Decimal(cost),
        unpriced=cost is None,
        **fields,
    )


def sample() -> list[Event]:
    """eng: 0.1 + 0.2 (day 1) and an unpriced call; sales: 0.05 failed (partial), 1.25 (day 2)."""
    return [
        _event(9, SONNET, "0.1", department="eng", project="alpha", input_tokens=800,
               output_tokens=200, cache_read_tokens=1000, latency_ms=400),
        _event(10.5, SONNET, "0.2", department="eng", project="alpha", input_tokens=1000,
               latency_ms=900),
        _event(11, ("acme.mystery", "acme.mystery-v1:0"), None, department="eng", project="beta",
               input_tokens=10),
        _event(12.25, NOVA, "0.05", department="sales", project="gamma", status="partial",
               partial=True, input_tokens=100),
        _event(30, NOVA, "1.25", department="sales", project="gamma", input_tokens=50),
        _event(60, NOVA, "7", department="sales"),  # outside RANGE
    ]  # fmt: skip


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path}/api.db"
    if request.param == "postgresql":
        url = str(request.getfixturevalue("pg_url"))
    opened = open_store(url)
    with opened.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    opened.insert_events(sample())
    yield opened
    opened.close()


@pytest.fixture
def web(store: Store, tmp_path: Path) -> Iterator[str]:
    settings = GatewaySettings(
        db=store.url, admin_token=TOKEN, journal_path=tmp_path / "journal.jsonl"
    )
    app = create_app(
        settings,
        store=store,
        credentials=lambda: None,
        clock=lambda: DAY + timedelta(days=2),
    )
    with serve(app) as url:
        yield url


def get(web: str, path: str, **params: str) -> requests.Response:
    return requests.get(f"{web}{path}", headers=AUTH, params=params, timeout=30)


def error_of(response: requests.Response) -> tuple[int, str]:
    assert response.headers["content-type"].startswith("application/json")
    return response.status_code, response.json()["error"]["message"]


def test_spend_by_department_with_money_as_decimal_strings(web: str) -> None:
    doc = get(web, "/api/v1/spend", group_by="department", **RANGE).json()
    assert doc["since"] == "2026-03-10T00:00:00Z" and doc["until"] == "2026-03-12T00:00:00Z"
    assert doc["group_by"] == ["department"] and doc["count"] == 2
    sales, eng = doc["rows"]  # most expensive first
    assert sales["department"] == "sales" and sales["cost"] == "1.3"
    assert (sales["errors"], sales["error_cost"]) == (1, "0.05")
    assert eng == {
        "department": "eng",
        "requests": 3,
        "errors": 0,
        "unpriced": 1,
        "input_tokens": 1810,
        "output_tokens": 200,
        "cache_read_tokens": 1000,
        "cache_write_tokens": 0,
        "total_tokens": 3010,
        "cost": "0.3",
        "error_cost": "0",
        "cost_per_1k_tokens": "0.099667774086",  # 0.3 * 1000 / 3010
        "cost_per_request": "0.1",
        "cache_hit_rate": "0.355872",  # 1000 / (1810 + 1000)
        "latency_p50_ms": 500.0,  # 400 and 900 ms, interpolated in [350, 500) and [750, 1000)
        "latency_p95_ms": 975.0,
    }


def test_spend_rows_match_hand_computed_values(web: str) -> None:
    eng = get(web, "/api/v1/spend", group_by="department", department="eng", **RANGE).json()
    (row,) = eng["rows"]
    assert (row["requests"], row["cost"], row["unpriced"]) == (3, "0.3", 1)
    assert (row["cost_per_request"], row["cost_per_1k_tokens"]) == ("0.1", "0.099667774086")
    assert row["cache_hit_rate"] == "0.355872"


def test_daily_buckets_filters_and_sessions(web: str) -> None:
    doc = get(web, "/api/v1/spend", bucket="day", order="bucket", **RANGE).json()
    assert [(r["bucket"], r["cost"]) for r in doc["rows"]] == [
        ("2026-03-10T00:00:00Z", "0.35"),
        ("2026-03-11T00:00:00Z", "1.25"),
    ]
    gamma = get(web, "/api/v1/spend", group_by="project", project="gamma", sessions="true", **RANGE)
    (row,) = gamma.json()["rows"]
    assert (row["project"], row["cost"], row["sessions"], row["cost_per_session"]) == (
        "gamma",
        "1.3",
        0,
        None,
    )


def test_latency_can_be_left_out(web: str) -> None:
    doc = get(web, "/api/v1/spend", group_by="department", latency="false", **RANGE).json()
    assert [(r["department"], r["cost"], r["latency_p50_ms"]) for r in doc["rows"]] == [
        ("sales", "1.3", None),
        ("eng", "0.3", None),
    ]
    status, text = error_of(get(web, "/api/v1/spend", latency="no"))
    assert status == 400 and "latency must be true or false" in text


def test_relative_ranges_use_the_server_clock(web: str) -> None:
    doc = get(web, "/api/v1/spend", since="2d").json()  # clock: 2026-03-12 00:00
    assert doc["since"] == "2026-03-10T00:00:00Z" and doc["rows"][0]["cost"] == "1.6"


def test_models_with_prices_and_unpriced_flagged(web: str) -> None:
    doc = get(web, "/api/v1/models", **RANGE).json()
    found = {m["base_model"]: m for m in doc["models"]}
    assert set(found) == {"anthropic.claude-sonnet-4-5", "amazon.nova-lite", "acme.mystery"}
    sonnet = found["anthropic.claude-sonnet-4-5"]
    assert sonnet["cost"] == "0.3" and sonnet["price"]["unpriced"] is False
    assert Decimal(sonnet["price"]["input_per_1m"]) > 0
    assert found["acme.mystery"]["price"]["unpriced"] is True
    assert found["acme.mystery"]["unpriced"] == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"group_by": "department,colour"}, "unknown group_by field colour"),
        ({"bucket": "year"}, "unknown bucket 'year'"),
        ({"since": "yesterday"}, "since must be a time such as 7d"),
        ({"since": "2026-03-10T00:00:00"}, "has no timezone"),
        ({"since": "2026-03-12", "until": "2026-03-10"}, "since (2026-03-12T00:00:00Z) must be"),
        ({"limit": "ten"}, "limit must be a whole number"),
        ({"limit": "0"}, "limit must be between 1 and 100000"),
        ({"sessions": "maybe"}, "sessions must be true or false"),
        ({"order": "-vibes"}, "cannot order by 'vibes'"),
        ({"prompt": "hello"}, "unknown query parameter 'prompt'"),
        ({"since": "99999999w"}, "since must be a time such as"),
    ],
)
def test_bad_spend_input_is_a_precise_400(web: str, params: dict[str, str], message: str) -> None:
    status, text = error_of(get(web, "/api/v1/spend", **params))
    assert status == 400 and message in text


def test_an_answer_of_too_many_rows_is_a_400_unless_limited(
    web: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = importlib.import_module("spendgate.analytics.answer")  # the module, not answer()
    monkeypatch.setattr(answers, "MAX_ROWS", 2)  # 100,000 here: three projects are more
    status, text = error_of(get(web, "/api/v1/spend", group_by="project", **RANGE))
    assert status == 400
    assert text.startswith("the answer has 3 rows, more than 2: narrow it with a filter")
    doc = get(web, "/api/v1/spend", group_by="project", limit="2", **RANGE).json()
    assert [(r["project"], r["cost"]) for r in doc["rows"]] == [("gamma", "1.3"), ("alpha", "0.3")]
    assert get(web, "/api/v1/spend", group_by="department", **RANGE).status_code == 200  # two


def test_a_repeated_parameter_is_refused(web: str) -> None:
    response = requests.get(
        f"{web}/api/v1/spend?department=eng&department=sales", headers=AUTH, timeout=30
    )
    assert error_of(response) == (400, "query parameter department is given more than once")


def test_the_admin_token_is_required(web: str) -> None:
    for path in ("/api/v1/spend", "/api/v1/models", "/api/v1/export"):
        assert requests.get(f"{web}{path}", timeout=30).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert requests.get(f"{web}{path}", headers=wrong, timeout=30).status_code == 401


def test_export_csv(web: str) -> None:
    response = get(web, "/api/v1/export", format="csv", **RANGE)
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["cost_usd"] for r in rows] == ["0.1", "0.2", "", "0.05", "1.25"]  # oldest first
    assert rows[2]["unpriced"] == "True" and rows[0]["ts"] == "2026-03-10T09:00:00Z"


def test_export_json_with_filters(web: str) -> None:
    response = get(web, "/api/v1/export", format="json", department="sales", **RANGE)
    doc = json.loads(response.content)
    assert [(e["department"], e["cost_usd"], e["status"]) for e in doc] == [
        ("sales", "0.05", "partial"),
        ("sales", "1.25", "ok"),
    ]


def test_export_parquet_is_typed_and_exact(web: str) -> None:
    response = get(web, "/api/v1/export", format="parquet", **RANGE)
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(response.content))
    assert table.num_rows == 5
    costs = table.column("cost_usd").to_pylist()
    assert costs[:2] == [Decimal("0.1"), Decimal("0.2")] and costs[2] is None
    assert table.column("ts").to_pylist()[0] == DAY + timedelta(hours=9)


def test_export_bad_format_and_filters(web: str) -> None:
    assert error_of(get(web, "/api/v1/export", format="xlsx")) == (
        400,
        "format must be one of csv, json, parquet, not 'xlsx'",
    )
    assert error_of(get(web, "/api/v1/export", department="")) == (
        400,
        "filter department needs a value",
    )


def test_events_route_still_served(web: str) -> None:
    doc = get(web, "/api/v1/events", department="sales", limit="1").json()
    assert doc["count"] == 1 and doc["events"][0]["cost_usd"] == "7"


def test_openapi_document_and_offline_docs_page(web: str) -> None:
    doc = requests.get(f"{web}/api/openapi.json", timeout=30).json()
    assert doc["openapi"].startswith("3.1")
    assert {"/api/v1/spend", "/api/v1/models", "/api/v1/events", "/api/v1/export"} <= set(
        doc["paths"]
    )
    page = requests.get(f"{web}/api/docs", timeout=30)
    assert page.headers["content-type"].startswith("text/html")
    assert "GET /api/v1/spend" in page.text and "<script" not in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing fetched


def test_a_restarted_gateway_answers_from_the_copies_it_saved(store: Store, tmp_path: Path) -> None:
    """At shutdown the gateway saves its rollup cache's copies beside its journal; started
    again (a new process: a new store), it reads them back before warming, so warming loads
    nothing from SQL, and answers as before."""
    store.fold()  # the events into the rollups: slots to warm
    settings = GatewaySettings(
        db=store.url, admin_token=TOKEN, journal_path=tmp_path / "journal.jsonl"
    )
    answers, slots = [], []
    for opened in (store, open_store(store.url)):
        app = create_app(
            settings, store=opened, credentials=lambda: None, clock=lambda: DAY + timedelta(days=2)
        )
        try:
            with serve(app) as url:
                cache = opened.rollup_cache
                cache.wait()  # read back (the second time), warmed and rehearsed
                slots.append(cache.slot_count)
                loads = cache.stats.loads
                doc = get(url, "/api/v1/spend", group_by="department,project", **RANGE).json()
                answers.append(doc["rows"])
                assert cache.stats.loads == loads
        finally:
            if opened is not store:
                opened.close()
    saved = list(tmp_path.glob("spendgate-rollup-cache/*/gen-*/manifest.arrow"))
    assert len(saved) == 1  # the second shutdown's snapshot replaced the first's
    assert loads == 0 and slots[0] == slots[1] > 0  # the second warming: all read back
    assert answers[0] == answers[1] and len(answers[0]) == 3
