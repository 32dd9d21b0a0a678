"""Spend answers over a store: the one query (``spend``) and the views a dashboard needs.

    spend(store, query)                          -> list[SpendRow]  any group-by / bucket / filter
    answer(store, query)                         -> pa.Table        the same answer as columns
    totals(store, since, until, filters)         -> SpendRow         one row for the whole range
    compare(store, since, until, filters)        -> Comparison       this period vs the one before
    top(store, field, since, until, n, filters=) -> list[SpendRow]  the n biggest by cost
    series(store, since, until, bucket, ...)     -> list[SpendRow]   time series, gaps filled
    rehearse(store, now, days)                   -> None             warm a process's answering

Every function reads through ``spendgate.store.spend`` (rollups where they can answer) and does
its arithmetic in ``spendgate.analytics.measures`` (pure).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from spendgate.analytics.answer import answer_json, answer_rows, answer_table, ranking
from spendgate.analytics.measures import bucket_starts
from spendgate.analytics.query import SpendQuery, SpendRow
from spendgate.store.db import Store
from spendgate.store.spend import sum_spend


def answer(store: Store, query: SpendQuery) -> pa.Table:
    """The answer to ``query`` as columns (``analytics.answer.answer_table``: ordered and
    limited); ``answer_rows`` / ``answer_json`` make rows or the API's JSON of it."""
    with _collector_paused():
        sums = sum_spend(
            store.engine,
            since=query.since,
            until=query.until,
            group_by=query.group_by,
            filters=query.filter_map,
            grain=query.bucket,
            distinct=query.sessions,
            latency=query.latency,
            cache=store.rollup_cache,
            rank=ranking(query),
        )
        return answer_table(sums, query)


def spend(store: Store, query: SpendQuery) -> list[SpendRow]:
    """The answer to ``query``: one row per group (and bucket), ordered and limited."""
    table = answer(store, query)
    with _collector_paused():
        return answer_rows(table, query.group_by)


# What ``rehearse`` asks: one question of each kind a dashboard asks (several fields from the
# full daily rollup; an hourly series by one field, and by two; distinct sessions; the top ids
# of each id field: a month of id slots grouped by id, the biggest sums a question makes, in
# each helper thread, whose allocator then keeps the memory they need).
_REHEARSED: tuple[dict[str, Any], ...] = (
    {"group_by": "project,region,status"},
    {"group_by": "project", "bucket": "hour"},
    {"group_by": "project,region", "bucket": "hour"},
    {"group_by": "project", "sessions": True},
    {"group_by": "project", "bucket": "hour", "sessions": True},
    {"group_by": "session_id", "limit": 100},
    {"group_by": "workflow_id", "sessions": True, "limit": 100},
)


def rehearse(store: Store, now: datetime, days: int) -> None:
    """Ask a question of each kind over the ``days`` days before ``now`` and drop the
    answers. The gateway has the rollup cache's worker do this once warming has loaded the
    slots (``RollupCache.warm``'s ``then``): the first use of each way of answering in a
    process costs 50-120 ms more than later ones (Arrow's kernels, the allocator's first
    growth), which a user's first question would otherwise pay."""
    since = now - timedelta(days=days)
    for args in _REHEARSED:
        query = SpendQuery.of(since, now, **args)
        answer_json(answer(store, query), query.group_by)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while an answer is built. A big answer makes
    ~10 small objects per row (tuples, lists, Decimals, rows), none of them in a cycle, and
    each burst of allocations made the collector scan the heap again: a quarter of the time
    of a 10,000-row answer. Reference counting frees everything as usual meanwhile. If the
    collector was already off (another thread in here), it is left to that thread."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def totals(
    store: Store,
    since: datetime,
    until: datetime,
    filters: Mapping[str, str] | None = None,
    *,
    sessions: bool = False,
) -> SpendRow:
    """Everything in ``[since, until)`` matching ``filters``, as one row (zeros when empty)."""
    rows = spend(store, SpendQuery.of(since, until, filters=filters, sessions=sessions))
    return rows[0] if rows else SpendRow()


@dataclass(frozen=True, slots=True)
class Comparison:
    """A period and the one of equal length just before it."""

    current: SpendRow
    previous: SpendRow

    @property
    def cost_change(self) -> Decimal | None:
        """Relative change of cost (0.25 = +25 %); ``None`` when the previous cost was zero."""
        before = self.previous.cost
        return (self.current.cost - before) / before if before else None


def compare(
    store: Store, since: datetime, until: datetime, filters: Mapping[str, str] | None = None
) -> Comparison:
    """Totals for ``[since, until)`` and for the equally long period that ends at ``since``."""
    query = SpendQuery.of(since, until, filters=filters)  # validates the range
    length = query.until - query.since
    previous = totals(store, query.since - length, query.since, filters)
    return Comparison(totals(store, query.since, query.until, filters), previous)


def top(
    store: Store,
    field: str | tuple[str, ...] | list[str],
    since: datetime,
    until: datetime,
    n: int = 10,
    *,
    filters: Mapping[str, str] | None = None,
    order: str = "-cost",
) -> list[SpendRow]:
    """The ``n`` groups of ``field`` (one name, a comma list or a list) that cost most (or by
    ``order``)."""
    query = SpendQuery.of(since, until, group_by=field, filters=filters, limit=n, order=order)
    return spend(store, query)


def series(
    store: Store,
    since: datetime,
    until: datetime,
    bucket: str = "day",
    *,
    group_by: str | tuple[str, ...] | list[str] = (),
    filters: Mapping[str, str] | None = None,
) -> list[SpendRow]:
    """Rows ordered by bucket then group. Without ``group_by``, every bucket of the range is
    present (zero rows fill the gaps) so a chart has no holes."""
    query = SpendQuery.of(
        since, until, group_by=group_by, filters=filters, bucket=bucket, order="bucket"
    )
    rows = spend(store, query)
    if query.group_by:
        return rows
    found = {row.bucket: row for row in rows}
    return [
        found.get(start, SpendRow(bucket=start))
        for start in bucket_starts(query.since, query.until, bucket)
    ]
