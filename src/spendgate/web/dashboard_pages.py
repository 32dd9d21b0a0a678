"""Each dashboard page's content, gathered from the query layer in one synchronous call (the
routes run it in a worker thread). No HTTP here: a page is a function of the data source, the
request's parameters and ``now``, returning the template's context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from spendgate.budgets.status import BudgetStatus, amount_text
from spendgate.web import dashboard_views as views
from spendgate.web.dashboard_data import MODEL, Spend

TOP = 5
# the pages for one attribution field: path -> (field, title)
DIMENSIONS = {
    "agents": ("agent", "Agents"),
    "departments": ("department", "Departments"),
    "projects": ("project", "Teams and projects"),
    "users": ("user_id", "Users"),
}
GROUP_FIELDS = (
    "department",
    "project",
    "agent",
    "user_id",
    "application",
    "environment",
    "cost_center",
    MODEL,
    "provider",
    "operation",
    "status",
    "key_id",
)
FILTER_FIELDS = ("department", "project", "agent", "user_id", MODEL)
COLUMNS = (
    ("cost", "spend", "money"),
    ("requests", "calls", "number"),
    ("input_tokens", "input tok", "number"),
    ("output_tokens", "output tok", "number"),
    ("cost_per_request", "$ / call", "money"),
    ("errors", "errors", "number"),
    ("error_cost", "error spend", "money"),
    ("unpriced", "unpriced", "number"),
)
MODEL_COLUMNS = (
    ("input_per_1m", "list $ / 1M in", "money"),
    ("output_per_1m", "list $ / 1M out", "money"),
    ("cost", "spend", "money"),
    ("requests", "calls", "number"),
    ("input_tokens", "input tok", "number"),
    ("output_tokens", "output tok", "number"),
    ("cache_read_tokens", "cache read tok", "number"),
    ("cost_per_1k_tokens", "$ / 1K tok", "money"),
    ("cost_per_request", "$ / call", "money"),
    ("cache_hit_rate", "cache hit", "percent"),
    ("latency_p50_ms", "p50 ms", "number"),
    ("latency_p95_ms", "p95 ms", "number"),
    ("error_rate", "error rate", "percent"),
    ("unpriced", "unpriced", "number"),
)


@dataclass(frozen=True, slots=True)
class Waste:
    cost: Decimal
    errors: int
    rows: list[dict[str, Any]]


def overview(spend: Spend, now: datetime) -> dict[str, Any]:
    today, yesterday = views.today_and_yesterday(now)
    month, last_month = views.month_and_previous(now)
    month_rows = spend.rows(group_by=(), since=month.since, until=month.until)
    day = views.window("24h", now)
    days = views.Window(views.day_start(now) - (views.RANGES["30d"]), now, "day")
    tops, whole = [], views.total(month_rows)
    for path, (field, title) in [*DIMENSIONS.items(), ("models", (MODEL, "Models"))]:
        rows = spend.rows(group_by=(field,), since=month.since, until=month.until, limit=TOP)
        for row in rows:
            row["share"] = views.share(Decimal(row["cost"]), whole)
        tops.append({"field": field, "title": title, "page": f"/dashboard/{path}", "rows": rows})
    today_rows = spend.rows(group_by=(), since=today.since, until=today.until)
    return {
        "today": views.Comparison(views.total(today_rows), _cost(spend, yesterday)),
        "month": views.Comparison(views.total(month_rows), _cost(spend, last_month)),
        "requests_today": views.total(today_rows, "requests"),
        "unpriced": int(views.total(month_rows, "unpriced")),
        "hourly": views.series_chart(
            spend.rows(group_by=(MODEL,), since=day.since, until=day.until, bucket="hour"),
            day,
            split=MODEL,
        ),
        "daily": views.series_chart(
            spend.rows(group_by=(), since=days.since, until=days.until, bucket="day"), days
        ),
        "tops": tops,
        "waste": _waste(spend, month, month_rows),
    }


def explorer(spend: Spend, params: Mapping[str, str], now: datetime) -> dict[str, Any]:
    group_by = params.get("group_by") if params.get("group_by") in GROUP_FIELDS else "project"
    assert group_by is not None
    range_name = _range(params)
    win = views.window(range_name, now)
    filters = views.filters_of(params, FILTER_FIELDS)
    rows = spend.rows(group_by=(group_by,), since=win.since, until=win.until, filters=filters)
    series = spend.rows(
        group_by=(group_by,), since=win.since, until=win.until, filters=filters, bucket=win.bucket
    )
    options = [(f, _values(spend, f, win, filters.get(f))) for f in FILTER_FIELDS]
    export = {"since": _iso(win.since), "until": _iso(win.until), **filters}
    return {
        "group_by": group_by,
        "group_fields": GROUP_FIELDS,
        "range": range_name,
        "ranges": list(views.RANGES),
        "filters": filters,
        "filter_options": options,
        "rows": rows,
        "total_cost": views.total(rows),
        "total_requests": views.total(rows, "requests"),
        "unpriced": int(views.total(rows, "unpriced")),
        "series": views.series_chart(series, win, split=group_by),
        "export_url": spend.export_url + "?" + urlencode(export),
    }


def dimension(spend: Spend, path: str, params: Mapping[str, str], now: datetime) -> dict[str, Any]:
    field, title = DIMENSIONS[path]
    range_name = _range(params)
    win = views.window(range_name, now)
    rows = spend.rows(group_by=(field,), since=win.since, until=win.until)
    series = spend.rows(group_by=(field,), since=win.since, until=win.until, bucket=win.bucket)
    return {
        "title": title,
        "field": field,
        "range": range_name,
        "ranges": list(views.RANGES),
        "rows": rows,
        "unpriced": int(views.total(rows, "unpriced")),
        "series": views.series_chart(series, win, split=field),
        "bars": views.bar_chart(rows[:15], field),
    }


def models(spend: Spend, params: Mapping[str, str], now: datetime) -> dict[str, Any]:
    range_name = _range(params)
    win = views.window(range_name, now)
    rows = spend.models(win.since, win.until)
    return {
        "title": "Models",
        "range": range_name,
        "ranges": list(views.RANGES),
        "rows": rows,
        "model_columns": MODEL_COLUMNS,
        "unpriced": int(views.total(rows, "unpriced")),
        "bars": views.bar_chart(rows[:15], "model"),
        "unit": views.bar_chart(rows[:15], "model", "cost_per_1k_tokens"),
    }


def budgets(statuses: Sequence[BudgetStatus]) -> dict[str, Any]:
    """Each budget against its limit: amounts in its metric, the share used, and a state
    (``over`` at the limit, ``warning`` past its first alert threshold, else ``ok``)."""
    rows = []
    for status in statuses:
        budget = status.budget
        used = status.spent / budget.limit
        warn = Decimal(min(budget.thresholds, default=100)) / 100
        state = "over" if used >= 1 else "warning" if used >= warn else "ok"
        rows.append(
            {
                "id": budget.id,
                "name": budget.name,
                "scope": budget.describe_scope(),
                "window": budget.window.value.replace("_", " "),
                "action": budget.action.value if budget.enabled else "disabled",
                "spent": amount_text(budget, status.spent),
                "reserved": amount_text(budget, status.reserved),
                "limit": amount_text(budget, budget.limit),
                "projected": amount_text(budget, status.projected),
                "resets_at": status.resets_at,
                "used": used,
                "bar": min(used, Decimal(1)),
                "warn": min(warn, Decimal("0.999")),
                "state": state,
            }
        )
    return {"budgets": rows}


def _cost(spend: Spend, win: views.Window) -> Decimal:
    return views.total(spend.rows(group_by=(), since=win.since, until=win.until))


def _waste(spend: Spend, month: views.Window, month_rows: list[dict[str, Any]]) -> Waste:
    by_agent = spend.rows(group_by=("agent",), since=month.since, until=month.until)
    failing = [r for r in by_agent if r.get("errors")]
    failing.sort(key=lambda r: (-Decimal(r.get("error_cost") or 0), -int(r["errors"])))
    return Waste(
        views.total(month_rows, "error_cost"),
        int(views.total(month_rows, "errors")),
        failing[:10],
    )


def _values(spend: Spend, field: str, win: views.Window, chosen: str | None) -> list[str]:
    rows = spend.rows(group_by=(field,), since=win.since, until=win.until, limit=100)
    values = sorted({str(r[field]) for r in rows if r.get(field) not in (None, "")})
    if chosen and chosen not in values:
        values.append(chosen)  # keep a filter that matches nothing visible
    return values


def _range(params: Mapping[str, str]) -> str:
    chosen = params.get("range", views.DEFAULT_RANGE)
    return chosen if chosen in views.RANGES else views.DEFAULT_RANGE


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
