"""The dashboard: server-rendered pages under ``/dashboard``, its static files under ``/static``.

    GET  /                          → /dashboard
    GET  /dashboard                 overview: today and month vs the previous period, series, tops
    GET  /dashboard/explorer        group by any field, filter, chart, table, download
    GET  /dashboard/agents|departments|projects|users|models
    GET  /dashboard/budgets         budget status bars (when a budget source is given)
    GET  /dashboard/export          the explorer's download: the API's /api/v1/export behind the
                                    dashboard's sign-in instead of a bearer token
    GET  /dashboard/signin, POST /dashboard/signin, POST /dashboard/signout
    GET  /static/...                Chart.js (vendored, no CDN), dashboard.js, dashboard.css

Pages need a signed-in session (``web.session``); queries run in worker threads. Templates are
Jinja2 with autoescaping on; pages send a Content-Security-Policy that allows only this origin's
scripts and styles (chart data travels as JSON, never as inline script).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from spendgate.budgets.status import BudgetStatus
from spendgate.gateway.app import utc_now
from spendgate.gateway.budget_sync import offline_status
from spendgate.settings import GatewaySettings
from spendgate.store.budgets import list_budgets
from spendgate.store.db import Store
from spendgate.web import dashboard_pages as pages
from spendgate.web import dashboard_views as views
from spendgate.web.api import api_routes
from spendgate.web.dashboard_data import Spend
from spendgate.web.session import HOME, MAX_TOKEN_CHARS, Session, safe_next, signin_url

NAV = (
    ("/dashboard", "Overview"),
    ("/dashboard/explorer", "Explorer"),
    ("/dashboard/departments", "Departments"),
    ("/dashboard/projects", "Projects"),
    ("/dashboard/agents", "Agents"),
    ("/dashboard/models", "Models"),
    ("/dashboard/users", "Users"),
    ("/dashboard/budgets", "Budgets"),
)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
MAX_FORM_BYTES = 2 * MAX_TOKEN_CHARS + 1024
BudgetSource = Callable[[datetime], Awaitable[Sequence[BudgetStatus]]]
Page = Callable[[Request], Awaitable[Response]]


def dashboard_routes(
    store: Store, settings: GatewaySettings, *, clock: Callable[[], datetime] = utc_now
) -> list[BaseRoute]:
    """The dashboard's routes over ``store``, signed in with ``settings.admin_token``; the web
    composition root serves them at the top level (``gateway.app.create_app(extra_routes=…)``)."""
    session = Session(settings.admin_token)
    export = next(
        r.endpoint
        for r in api_routes(store, clock=clock)
        if isinstance(r, Route) and r.path == "/export"
    )
    return Dashboard(
        Spend(store), session, clock=clock, budgets=stored_budgets(store, settings), export=export
    ).routes()


def stored_budgets(store: Store, settings: GatewaySettings) -> BudgetSource:
    """Every budget's status from the stored events (or from Redis, reservations included,
    when ``settings.redis_url`` is set), as ``spendgate budgets status`` computes it."""

    async def statuses(now: datetime) -> Sequence[BudgetStatus]:
        found = await run_in_threadpool(list_budgets, store)
        return await offline_status(store, found, now, settings=settings) if found else []

    return statuses


def templates() -> Jinja2Templates:
    """The page templates (packaged with spendgate), autoescaped, with the number filters."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("spendgate.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        money=views.fmt_money,
        number=views.fmt_number,
        percent=views.fmt_percent,
        change=views.fmt_change,
        label=views.label,
        cell=_cell,
        cost=views.fmt_cost,
    )
    env.globals.update(nav=NAV, default_columns=pages.COLUMNS, static=lambda n: f"/static/{n}")
    return Jinja2Templates(env=env)


def _cell(row: Mapping[str, Any], key: str, kind: str) -> str:
    """One table cell: money through ``fmt_cost`` (unpriced calls are never $0)."""
    if kind == "money":
        return views.fmt_cost(row, key)
    formats = {"number": views.fmt_number, "percent": views.fmt_percent}
    return formats[kind](row.get(key))


class Dashboard:
    """The pages, over a ``Spend`` source, a ``Session`` and a clock."""

    def __init__(
        self,
        spend: Spend,
        session: Session,
        *,
        clock: Callable[[], datetime],
        budgets: BudgetSource | None = None,
        export: Page | None = None,
    ) -> None:
        self.spend = spend
        self.export = export
        self.session = session
        self.clock = clock
        self.budgets = budgets
        self.templates = templates()

    def routes(self) -> list[BaseRoute]:
        page = self._page
        dimension_paths = "|".join(pages.DIMENSIONS)
        inner = [
            Route("/", page(self.overview)),
            Route("/signin", self.signin_form, methods=["GET"]),
            Route("/signin", self.signin, methods=["POST"]),
            Route("/signout", self.signout, methods=["POST"]),
            Route("/explorer", page(self.explorer)),
            Route("/models", page(self.models)),
            Route("/budgets", page(self.budget_page)),
            *([Route("/export", page(self.export))] if self.export else []),
            *[Route(f"/{p}", page(self._dimension(p))) for p in dimension_paths.split("|")],
        ]
        return [
            Route("/", lambda request: RedirectResponse(HOME, status_code=307)),
            Route(HOME, page(self.overview)),
            Mount(HOME, routes=inner),
            Mount("/static", StaticFiles(packages=[("spendgate.web", "static")]), name="static"),
        ]

    # -- pages -------------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        context = await run_in_threadpool(pages.overview, self.spend, self.clock())
        return self._render(request, "overview.html", "Overview", context)

    async def explorer(self, request: Request) -> Response:
        params = _params(request)
        context = await run_in_threadpool(pages.explorer, self.spend, params, self.clock())
        return self._render(request, "explorer.html", "Explorer", context)

    async def models(self, request: Request) -> Response:
        params = _params(request)
        context = await run_in_threadpool(pages.models, self.spend, params, self.clock())
        return self._render(request, "models.html", "Models", context)

    def _dimension(self, path: str) -> Page:
        async def page(request: Request) -> Response:
            params = _params(request)
            context = await run_in_threadpool(
                pages.dimension, self.spend, path, params, self.clock()
            )
            return self._render(request, "dimension.html", context["title"], context)

        return page

    async def budget_page(self, request: Request) -> Response:
        statuses = [] if self.budgets is None else await self.budgets(self.clock())
        context = {**pages.budgets(statuses), "available": self.budgets is not None}
        return self._render(request, "budgets.html", "Budgets", context)

    # -- sign-in -----------------------------------------------------------------------------

    async def signin_form(self, request: Request) -> Response:
        next_path = safe_next(request.query_params.get("next", HOME))
        return self._signin_page(request, next_path, None)

    async def signin(self, request: Request) -> Response:
        form = await _form(request)
        token, next_path = form.get("token", ""), safe_next(form.get("next", HOME))
        if self.session.token_matches(token.strip()):
            return self.session.sign_in(request, next_path)
        if not self.session.enabled:
            return self._signin_page(request, next_path, None)
        message = "Wrong admin token. Try again."
        return self._signin_page(request, next_path, message, status=401)

    async def signout(self, request: Request) -> Response:
        return self.session.sign_out()

    def _signin_page(
        self, request: Request, next_path: str, error: str | None, status: int = 200
    ) -> Response:
        context = {"next": next_path, "error": error, "enabled": self.session.enabled}
        status = status if self.session.enabled else 403
        return self._render(request, "signin.html", "Sign in", context, status, signed_in=False)

    # -- plumbing ----------------------------------------------------------------------------

    def _page(self, handler: Page) -> Page:
        async def page(request: Request) -> Response:
            if not self.session.signed_in(request):
                if not self.session.enabled:
                    return self._signin_page(request, HOME, None)
                return RedirectResponse(signin_url(request), status_code=303)
            return await handler(request)

        return page

    def _render(
        self,
        request: Request,
        name: str,
        title: str,
        context: Mapping[str, Any],
        status: int = 200,
        *,
        signed_in: bool = True,
    ) -> Response:
        full = {"title": title, "current": request.url.path.rstrip("/") or HOME, **context}
        full["signed_in"] = signed_in
        response = self.templates.TemplateResponse(request, name, full, status_code=status)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response


async def _form(request: Request) -> dict[str, str]:
    """A small URL-encoded form (the sign-in form); anything else or anything large is empty."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    fields = parse_qsl(body.decode("utf-8", "replace"), max_num_fields=8)
    return dict(fields)


def _params(request: Request) -> dict[str, str]:
    """Query parameters, the last value winning; overlong values dropped."""
    return {k: v for k, v in request.query_params.items() if len(v) <= 256}
