"""The dashboard over a real socket with ``requests``: sign-in, every page, the numbers a
hand-seeded store must show (tests/web/dashboard_seed.py), escaping and headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from starlette.applications import Starlette

from spendgate.settings import GatewaySettings
from spendgate.store.db import open_store
from spendgate.web.dashboard import dashboard_routes
from spendgate.web.session import COOKIE, Session

from dashboard_seed import TOKEN, served_dashboard
from helpers import serve


def text_of(html: str) -> str:
    """The visible text of a page: tags and embedded chart JSON removed, spaces collapsed."""
    html = re.sub(r'<script type="application/json".*?</script>', " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_dashboard(tmp_path_factory.mktemp("dash")) as base:
        yield base


@pytest.fixture
def browser(url: str) -> Iterator[requests.Session]:
    """A signed-in session."""
    with requests.Session() as session:
        answer = session.post(f"{url}/dashboard/signin", data={"token": TOKEN}, timeout=10)
        assert answer.status_code == 200 and answer.url == f"{url}/dashboard"
        yield session


def test_pages_need_sign_in_and_remember_where_you_were_going(url: str) -> None:
    answer = requests.get(f"{url}/dashboard/models?range=30d", allow_redirects=False, timeout=10)
    assert answer.status_code == 303
    assert (
        answer.headers["location"] == "/dashboard/signin?next=%2Fdashboard%2Fmodels%3Frange%3D30d"
    )
    form = requests.get(url + answer.headers["location"], timeout=10)
    assert form.status_code == 200 and 'name="token"' in form.text
    assert 'value="/dashboard/models?range=30d"' in form.text


def test_root_redirects_to_the_dashboard(url: str) -> None:
    answer = requests.get(url + "/", allow_redirects=False, timeout=10)
    assert answer.status_code == 307 and answer.headers["location"] == "/dashboard"


def test_wrong_token_is_a_401_form_with_an_error_and_no_cookie(url: str) -> None:
    answer = requests.post(
        f"{url}/dashboard/signin", data={"token": "not-it", "next": "/dashboard"}, timeout=10
    )
    assert answer.status_code == 401
    assert "Wrong admin token" in answer.text and 'name="token"' in answer.text
    assert COOKIE not in answer.headers.get("set-cookie", "")
    assert "not-it" not in answer.text
    empty = requests.post(f"{url}/dashboard/signin", data={}, timeout=10)
    assert empty.status_code == 401


def test_sign_in_sets_a_strict_httponly_cookie_without_the_token(url: str) -> None:
    answer = requests.post(
        f"{url}/dashboard/signin",
        data={"token": TOKEN, "next": "/dashboard/agents"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/agents"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    value = answer.cookies[COOKIE]
    assert TOKEN not in value and re.fullmatch(r"[0-9a-f]{64}", value)


def test_a_cookie_from_another_process_or_a_forged_one_is_refused(url: str) -> None:
    other = Session(TOKEN)  # same token, another process: another secret
    forged = {COOKIE: "0" * 64}
    for cookies in (forged, {COOKIE: other._mark()}, {COOKIE: TOKEN}):
        answer = requests.get(
            f"{url}/dashboard", cookies=cookies, allow_redirects=False, timeout=10
        )
        assert answer.status_code == 303, cookies


def test_sign_out_drops_the_cookie(url: str, browser: requests.Session) -> None:
    assert browser.get(f"{url}/dashboard", allow_redirects=False, timeout=10).status_code == 200
    out = browser.post(f"{url}/dashboard/signout", allow_redirects=False, timeout=10)
    assert out.status_code == 303 and out.headers["location"] == "/dashboard/signin"
    assert browser.get(f"{url}/dashboard", allow_redirects=False, timeout=10).status_code == 303


def test_no_open_redirect_after_sign_in(url: str) -> None:
    for target in ("https://evil.example/", "//evil.example", "/dashboard//evil", "/api/v1/keys"):
        answer = requests.post(
            f"{url}/dashboard/signin",
            data={"token": TOKEN, "next": target},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.headers["location"] == "/dashboard", target


def test_without_an_admin_token_the_dashboard_says_how_to_turn_it_on(tmp_path: Path) -> None:
    with served_dashboard(tmp_path, token=None) as base:
        page = requests.get(f"{base}/dashboard", timeout=10)
        assert page.status_code == 403 and "SPENDGATE_ADMIN_TOKEN" in page.text
        tried = requests.post(f"{base}/dashboard/signin", data={"token": ""}, timeout=10)
        assert tried.status_code == 403


def test_overview_shows_the_hand_computed_numbers(url: str, browser: requests.Session) -> None:
    page = browser.get(f"{url}/dashboard", timeout=10)
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Spend today $0.2050 +105.0% vs previous" in text
    assert "Spend this month $0.3450 +200.0% vs previous" in text
    assert "Calls today 17" in text
    assert "Error waste this month $0.0500 1 failed calls" in text
    assert "1 call in this view used a model the price catalog does not know" in text
    assert "engineering $0.2750 79.7% 15" in text and "sales $0.0700 20.3% 25" in text
    assert "research unpriced" in text  # never a confident $0
    assert "coder 1 $0.0500 6.7%" in text  # error waste by agent
    assert page.text.count("<canvas") == 2


@pytest.mark.postgres
def test_the_same_numbers_on_postgresql(pg_url: str) -> None:
    with served_dashboard(pg_url) as base, requests.Session() as session:
        session.post(f"{base}/dashboard/signin", data={"token": TOKEN}, timeout=10)
        text = text_of(session.get(f"{base}/dashboard", timeout=10).text)
        assert "Spend today $0.2050 +105.0% vs previous" in text
        assert "Spend this month $0.3450 +200.0% vs previous" in text
        assert "engineering $0.2750 79.7% 15" in text and "research unpriced" in text
        sales = session.get(
            f"{base}/dashboard/explorer",
            params={"range": "30d", "group_by": "agent", "department": "sales"},
            timeout=10,
        )
        assert "Spend $0.0700 Calls 25" in text_of(sales.text)
        budgets = text_of(session.get(f"{base}/dashboard/budgets", timeout=10).text)
        assert "55.0% · warning" in budgets and "150.0% · over" in budgets


def test_explorer_filters_change_the_numbers(url: str, browser: requests.Session) -> None:
    everything = text_of(browser.get(f"{url}/dashboard/explorer?range=30d", timeout=10).text)
    assert "Spend $0.3450 Calls 41" in everything
    sales = browser.get(
        f"{url}/dashboard/explorer",
        params={"range": "30d", "group_by": "agent", "department": "sales"},
        timeout=10,
    )
    text = text_of(sales.text)
    assert "Spend $0.0700 Calls 25" in text
    assert (
        "writer $0.0700 25 25,000 5,000 $0.0028" in text
        and "coder" not in text.split("By agent")[1]
    )
    assert '<option value="sales" selected>' in sales.text


def test_explorer_rejects_nothing_it_does_not_know_but_ignores_it(
    url: str, browser: requests.Session
) -> None:
    page = browser.get(
        f"{url}/dashboard/explorer",
        params={"group_by": "'; DROP TABLE events", "range": "1y", "bogus": "x"},
        timeout=10,
    )
    assert page.status_code == 200 and "By project" in text_of(page.text)


def test_models_side_by_side(url: str, browser: requests.Session) -> None:
    text = text_of(browser.get(f"{url}/dashboard/models?range=30d", timeout=10).text)
    # sonnet: 15 calls, 0.275 spent over 15 × 1,700 tokens = $0.0108 / 1K; cache reads
    # 500 of 1,500 prompt tokens = 33.3 %; list price from the catalog
    assert (
        "Claude Sonnet 4.5 $3.30 $16.50 $0.2750 15 15,000 3,000 7,500 $0.0108 $0.0183 33.3%" in text
    )
    assert "acme.mystery unpriced unpriced unpriced 1" in text


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("agents", "coder $0.2750 15"),
        ("departments", "engineering $0.2750 15"),
        ("projects", "beta $0.0700 25"),
        ("users", "ann $0.2750 15"),
    ],
)
def test_dimension_pages(url: str, browser: requests.Session, path: str, expected: str) -> None:
    page = browser.get(f"{url}/dashboard/{path}?range=30d", timeout=10)
    assert page.status_code == 200 and expected in text_of(page.text)


def test_everything_is_escaped(url: str, browser: requests.Session) -> None:
    for path in ("/dashboard", "/dashboard/agents?range=30d", "/dashboard/explorer?group_by=agent"):
        html = browser.get(url + path, timeout=10).text
        assert "<script>x</script>" not in html
        assert "&lt;script&gt;x&lt;/script&gt;" in html or "\\u003cscript\\u003e" in html
    reflected = browser.get(
        f"{url}/dashboard/explorer", params={"agent": '"><script>alert(1)</script>'}, timeout=10
    ).text
    assert "<script>alert(1)" not in reflected


def test_pages_carry_a_strict_content_security_policy(url: str, browser: requests.Session) -> None:
    answer = browser.get(f"{url}/dashboard", timeout=10)
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store"
    assert "<script>" not in answer.text  # no inline script: chart data is JSON


def test_static_files_are_served_by_the_gateway_itself(url: str) -> None:
    chart = requests.get(f"{url}/static/chart.umd.js", timeout=10)
    assert chart.status_code == 200 and "Chart.js v4.6.1" in chart.text[:200]
    assert "javascript" in chart.headers["content-type"]
    licence = requests.get(f"{url}/static/chart.js-LICENSE.md", timeout=10)
    assert "MIT License" in licence.text
    assert requests.get(f"{url}/static/../session.py", timeout=10).status_code == 404


def test_budgets_page_shows_each_budget_against_its_limit(
    url: str, browser: requests.Session
) -> None:
    page = browser.get(f"{url}/dashboard/budgets", timeout=10)
    assert page.status_code == 200
    text = text_of(page.text)
    assert "eng monthly department=engineering calendar month block $0.275" in text
    assert "55.0% · warning" in text
    assert "sales &lt;b&gt;daily&lt;/b&gt; department=sales calendar day alert $0.03" in text
    assert "150.0% · over" in text
    assert "all calls today every call calendar day block 17 requests" in text
    assert "1.7% · ok" in text
    assert page.text.count("<meter") == 3


def test_explorer_downloads_the_calls_it_shows(url: str, browser: requests.Session) -> None:
    page = browser.get(
        f"{url}/dashboard/explorer", params={"range": "30d", "department": "sales"}, timeout=10
    ).text
    link = re.search(r'href="(/dashboard/export\?[^"]+format=csv)"', page)
    assert link, "no CSV link"
    href = link[1].replace("&amp;", "&")
    csv = browser.get(url + href, timeout=10)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert len(lines) == 1 + 25  # header + the 25 sales calls of the last 30 days
    assert all(",sales," in line for line in lines[1:])
    parquet = browser.get(url + href.replace("format=csv", "format=parquet"), timeout=10)
    assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"
    signed_out = requests.get(url + href, allow_redirects=False, timeout=10)
    assert signed_out.status_code == 303


def test_an_empty_store_renders_every_page(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    routes = dashboard_routes(store, GatewaySettings(admin_token=TOKEN))
    paths = ["", "/explorer", "/departments", "/projects", "/agents", "/models", "/users"]
    try:
        with serve(Starlette(routes=routes)) as base, requests.Session() as session:
            session.post(f"{base}/dashboard/signin", data={"token": TOKEN}, timeout=10)
            for path in [*paths, "/budgets"]:
                page = session.get(f"{base}/dashboard{path}", timeout=10)
                assert page.status_code == 200, path
            overview = text_of(session.get(f"{base}/dashboard", timeout=10).text)
            assert "Spend today $0.00 no previous data" in overview
            assert "No calls this month." in overview
            assert "No budgets yet" in session.get(f"{base}/dashboard/budgets", timeout=10).text
    finally:
        store.close()
