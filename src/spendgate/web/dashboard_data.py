"""The dashboard's one door to the query layer (``spendgate.analytics``): it asks
``SpendQuery`` questions and hands back flat rows for templates — group fields, ``bucket``,
every measure of ``SpendRow`` including the derived ones, and ``error_rate``. Synchronous:
callers run it in a worker thread. No SQL here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from spendgate import analytics
from spendgate.analytics import MAX_ROWS, MEASURES, SpendQuery, SpendRow
from spendgate.store.db import Store

MODEL = "base_model"  # the catalog's model name: one row per model, whatever profile was called


class Spend:
    """Spend rows for the dashboard from ``store``; ``export_url`` is where the explorer's
    download links point."""

    def __init__(self, store: Store, *, export_url: str = "/dashboard/export") -> None:
        self.store = store
        self.export_url = export_url

    def rows(
        self,
        *,
        group_by: Sequence[str],
        since: datetime,
        until: datetime,
        filters: Mapping[str, str] | None = None,
        bucket: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        # A page shows at most the top ``MAX_ROWS`` (by cost), where the API refuses more.
        limit = MAX_ROWS if limit is None else limit
        query = SpendQuery.of(since, until, group_by, filters, bucket=bucket, limit=limit)
        return [flat(row) for row in analytics.spend(self.store, query)]

    def models(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Models side by side, with their display name and catalog price per 1M tokens."""
        out = []
        for model in analytics.models(self.store, since, until):
            row = flat(model.spend)
            price = model.price.price if model.price is not None else None
            row |= {MODEL: model.base_model, "provider": model.provider}
            row["model"] = model.name or model.base_model
            row["input_per_1m"] = None if price is None else price.input
            row["output_per_1m"] = None if price is None else price.output
            out.append(row)
        return out


def flat(row: SpendRow) -> dict[str, Any]:
    """A row as one mapping: group values, ``bucket`` (datetime), measures, ``error_rate``."""
    out: dict[str, Any] = dict(row.keys)
    out["bucket"] = row.bucket
    for name in MEASURES:
        out[name] = getattr(row, name)
    out["error_rate"] = Decimal(row.errors) / row.requests if row.requests else None
    return out
