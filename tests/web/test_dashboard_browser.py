"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright):
sign in through the form, every page loads without a console error, charts are drawn, and
choosing a filter changes the numbers. Skips without Chromium or playwright, except under
CI=true (scripts/test installs Chromium)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard_seed import TOKEN, served_dashboard

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PAGES = ("", "/explorer", "/departments", "/projects", "/agents", "/models", "/users", "/budgets")

# A canvas counts as drawn when some pixel is not transparent.
DRAWN = """canvas => {
  const context = canvas.getContext("2d");
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) return true; }
  return false;
}"""


def _sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = [
        what
        for what, ok in (("playwright", sync_playwright), ("chromium", shutil.which(CHROMIUM)))
        if not ok
    ]
    if missing:
        message = f"the browser test needs {' and '.join(missing)} (scripts/test installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true: it must run")
        pytest.skip(message)
    return sync_playwright


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_dashboard(tmp_path_factory.mktemp("browser")) as base:
        yield base


@pytest.fixture(scope="module")
def page(url: str) -> Iterator[Any]:
    sync_playwright = _sync_playwright()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


class Console:
    """Everything a page complains about: console errors, warnings, uncaught exceptions,
    failed requests."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.problems.append(f"exception: {error}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))

    def _message(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"{message.type}: {message.text}")


def sign_in(page: Any, url: str, token: str) -> None:
    page.goto(f"{url}/dashboard")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def test_signing_in_and_every_page_without_console_errors(page: Any, url: str) -> None:
    console = Console(page)
    sign_in(page, url, "wrong")
    assert "Wrong admin token" in page.inner_text("[role=alert]")
    console.problems = [p for p in console.problems if "401" not in p]  # the refused form post
    sign_in(page, url, TOKEN)
    assert page.url == f"{url}/dashboard"
    for path in PAGES:
        page.goto(f"{url}/dashboard{path}?range=30d")
        page.wait_for_load_state("networkidle")
        assert page.locator("h1").count() == 1, path
    assert console.problems == []
    page.goto(f"{url}/dashboard/budgets")
    assert page.locator("#budgets-table meter").count() == 3
    assert page.locator("tr[data-state=over] td").first.inner_text() == "sales <b>daily</b>"


def test_charts_are_drawn(page: Any, url: str) -> None:
    page.goto(f"{url}/dashboard")
    page.wait_for_load_state("networkidle")
    canvases = page.locator("canvas[data-chart]")
    assert canvases.count() == 2
    for n in range(canvases.count()):
        canvas = canvases.nth(n)
        canvas.wait_for(state="visible")
        page.wait_for_function("c => c.dataset.drawn === 'true'", arg=canvas.element_handle())
        assert canvas.evaluate(DRAWN), f"canvas {n} is blank"
        box = canvas.bounding_box()
        assert box["width"] > 100 and box["height"] > 100


def test_choosing_a_filter_changes_the_numbers(page: Any, url: str) -> None:
    page.goto(f"{url}/dashboard/explorer?range=30d&group_by=department")
    before = page.inner_text("#explorer-total")
    assert before == "$0.3450"
    assert page.locator("#explorer-table tbody tr").count() == 3
    with page.expect_navigation():
        page.select_option("#filter-department", "sales")  # the form applies itself on change
    assert "department=sales" in page.url
    assert page.inner_text("#explorer-total") == "$0.0700"
    assert page.locator("#explorer-table tbody tr").count() == 1
    assert page.locator("canvas#chart-explorer").evaluate(DRAWN)
    with page.expect_navigation():
        page.select_option("#group_by", "agent")
    assert page.inner_text("#explorer-table tbody tr td") == "writer"
    with page.expect_download() as download:
        page.click("#download-csv")
    lines = Path(download.value.path()).read_text().strip().splitlines()
    assert len(lines) == 1 + 25 and all(",sales," in line for line in lines[1:])


def test_sign_out(page: Any, url: str, tmp_path: Path) -> None:
    page.goto(f"{url}/dashboard")
    page.click("text=Sign out")
    page.wait_for_load_state("load")
    assert page.url.startswith(f"{url}/dashboard/signin")
    page.goto(f"{url}/dashboard/models")
    assert page.url.startswith(f"{url}/dashboard/signin")
