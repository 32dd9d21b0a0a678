"""``spendgate report``: spend grouped by any fields, as a table, CSV or JSON.

The same query the API answers (``spendgate.analytics.spend``), on the gateway's store.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from spendgate.analytics import (
    BUCKETS,
    DIMENSIONS,
    SpendQuery,
    SpendRow,
    money_text,
    row_to_dict,
    spend,
    totals,
)
from spendgate.analytics.periods import EXAMPLES, time_range
from spendgate.cli.options import gateway_store, store_options
from spendgate.errors import ConfigError

FORMATS = ("table", "csv", "json")


def parse_filters(pairs: Sequence[str]) -> dict[str, str]:
    """``FIELD=VALUE`` pairs as a dict; ``ConfigError`` for a malformed or repeated one."""
    filters: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(
                f"--filter takes FIELD=VALUE (for example department=eng), not {pair!r}"
            )
        if name in filters:
            raise ConfigError(f"--filter {name} is given more than once")
        filters[name] = value
    return filters


@click.command()
@click.option(
    "--by",
    "group_by",
    default="",
    help=f"Comma-separated fields to group by: {', '.join(DIMENSIONS)}.",
)
@click.option("--since", default="7d", show_default=True, help=f"Start of the range: {EXAMPLES}.")
@click.option("--until", help="End of the range (exclusive; default now).")
@click.option(
    "--bucket", type=click.Choice(BUCKETS), help="Also split by hour, day, week or month."
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Only events whose FIELD equals VALUE (repeatable; empty VALUE: events without one).",
)
@click.option(
    "--order", default="-cost", show_default=True, help="Measure to sort by; '-' = descending."
)
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many rows.")
@click.option("--sessions", is_flag=True, help="Also count sessions and workflows (slower).")
@click.option(
    "--latency/--no-latency", default=True, help="Show latency p50/p95 (--no-latency: faster)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)
@store_options
def report(
    *,
    group_by: str,
    since: str,
    until: str | None,
    bucket: str | None,
    filters: tuple[str, ...],
    order: str,
    limit: int | None,
    sessions: bool,
    latency: bool,
    fmt: str,
    db: str | None,
    config_file: Path | None,
) -> None:
    """Spend by project, model, team... over a time range (rich table, CSV or JSON)."""
    start, end = time_range(since, until, datetime.now(UTC))
    query = SpendQuery.of(
        start,
        end,
        group_by=group_by,
        filters=parse_filters(filters),
        bucket=bucket,
        order=order,
        limit=limit,
        sessions=sessions,
        latency=latency,
    )
    with gateway_store(db, config_file) as store:
        rows = spend(store, query)
        total = totals(store, start, end, query.filter_map) if fmt == "table" else None
    if fmt == "json":
        doc = {
            "since": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "until": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "group_by": list(query.group_by),
            "bucket": bucket,
            "rows": [row_to_dict(r) for r in rows],
        }
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    elif fmt == "csv":
        write_csv(rows, query)
    else:
        assert total is not None
        print_table(rows, query, total)


def write_csv(rows: Sequence[SpendRow], query: SpendQuery) -> None:
    """Rows as CSV on stdout (group fields, bucket, measures)."""
    docs = [row_to_dict(r) for r in rows]
    names = [*query.group_by, *(["bucket"] if query.bucket else [])]
    names += [n for n in (docs[0] if docs else row_to_dict(SpendRow())) if n not in names]
    writer = csv.DictWriter(
        sys.stdout, fieldnames=names, lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    for doc in docs:
        writer.writerow({k: "" if v is None else v for k, v in doc.items()})


def _usd(value: object) -> str:
    if value is None:
        return "-"
    text = money_text(value)  # type: ignore[arg-type]
    assert text is not None
    whole, _, fraction = text.partition(".")
    return f"${int(whole):,}" + (f".{fraction[:4].ljust(2, '0')}" if fraction else ".00")


def _percent(value: object) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}%"  # type: ignore[arg-type]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_table(rows: Sequence[SpendRow], query: SpendQuery, total: SpendRow) -> None:
    """A rich table of the rows, with a total line for the whole range."""
    title = f"Spend {query.since:%Y-%m-%d %H:%M} → {query.until:%Y-%m-%d %H:%M} UTC"
    table = Table(title=title, show_footer=True)
    label_columns = [*query.group_by, *(["bucket"] if query.bucket else [])]
    for index, name in enumerate(label_columns):
        table.add_column(name, footer="total" if index == 0 else "")
    measures: list[tuple[str, Callable[[SpendRow], str]]] = [
        ("cost", lambda r: _usd(r.cost)),
        ("requests", lambda r: f"{r.requests:,}"),
        ("tokens", lambda r: f"{r.total_tokens:,}"),
        ("$/1K tok", lambda r: _usd(r.cost_per_1k_tokens)),
        ("$/req", lambda r: _usd(r.cost_per_request)),
        ("cache hit", lambda r: _percent(r.cache_hit_rate)),
        ("errors", lambda r: f"{r.errors:,}"),
        ("error $", lambda r: _usd(r.error_cost)),
        ("p50 ms", lambda r: _ms(r.latency_p50_ms)),
        ("p95 ms", lambda r: _ms(r.latency_p95_ms)),
        ("unpriced", lambda r: f"{r.unpriced:,}"),
    ]
    if query.sessions:
        measures.append(("$/session", lambda r: _usd(r.cost_per_session)))
    for name, cell in measures:
        table.add_column(name, justify="right", footer=cell(total))
    for row in rows:
        labels = [row.keys.get(n) or "(none)" for n in query.group_by]
        if query.bucket:
            labels.append(f"{row.bucket:%Y-%m-%d %H:%M}" if row.bucket else "")
        table.add_row(*labels, *(cell(row) for _, cell in measures))
    width = shutil.get_terminal_size((160, 24)).columns
    console = Console(width=max(width, 120), highlight=False, soft_wrap=False)
    console.print(table)
    if total.unpriced:
        console.print(
            f"[yellow]{total.unpriced:,} unpriced call(s): their cost is unknown and not in "
            "the totals (see spendgate quote / docs/pricing.md).[/yellow]"
        )
