"""Models side by side: what each model seen in a period cost, its unit economics, and the
catalog's price for it (the price that applies to its most used model id and region).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from spendgate.analytics.query import SpendQuery, SpendRow, money_text, row_to_dict
from spendgate.analytics.spend import spend
from spendgate.pricing import Catalog, PriceResult, default_catalog, price_for
from spendgate.store.db import Store

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One model (``base_model``): its spend row, display name and current catalog price."""

    base_model: str | None
    provider: str | None
    name: str | None
    spend: SpendRow
    price: PriceResult | None  # None: no model id was recorded for it

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"base_model": self.base_model, "provider": self.provider}
        out["name"] = self.name
        out.update(row_to_dict(self.spend))
        out["price"] = price_to_dict(self.price)
        return out


def price_to_dict(result: PriceResult | None) -> dict[str, Any] | None:
    """A price as JSON: USD per 1M tokens as decimal strings, or why the model is unpriced."""
    if result is None:
        return None
    price = result.price
    if price is None:
        return {"unpriced": True, "reason": result.unpriced_reason}
    rates = {
        f"{component}_per_1m": money_text(rate)
        for component, rate in zip(
            ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h"),
            price.rates,
            strict=True,
        )
    }
    return {
        "unpriced": False,
        "ref": price.ref,
        "region": price.region,
        "scope": price.scope,
        "tier": price.tier,
        "catalog_version": result.catalog_version,
        "estimate": price.estimate,
        **rates,
    }


def models(
    store: Store,
    since: datetime,
    until: datetime,
    filters: Mapping[str, str] | None = None,
    *,
    catalog: Catalog | None = None,
) -> list[ModelRow]:
    """Every model with spend in ``[since, until)``, most expensive first."""
    catalog = catalog if catalog is not None else default_catalog()
    query = SpendQuery.of(
        since, until, group_by="base_model,provider,model_id,region", filters=filters
    )
    detail = spend(store, query)
    by_model: dict[tuple[str | None, str | None], list[SpendRow]] = {}
    for row in detail:
        by_model.setdefault((row.keys["base_model"], row.keys["provider"]), []).append(row)
    summary = {
        (row.keys["base_model"], row.keys["provider"]): row
        for row in spend(store, SpendQuery.of(since, until, "base_model,provider", filters))
    }
    out = []
    for (base, provider), rows in by_model.items():
        busiest = max(rows, key=lambda r: r.requests)
        model_id, region = busiest.keys["model_id"], busiest.keys["region"]
        price = None
        if model_id:
            price = price_for(model_id, region or DEFAULT_REGION, until, catalog=catalog)
        key = catalog.key_for(base) if base else None  # events keep the foundation id
        info = catalog.models.get(key) if key is not None else None
        name = info.name if info is not None else None
        out.append(ModelRow(base, provider, name, summary[(base, provider)], price))
    return sorted(out, key=lambda r: (-r.spend.cost, r.base_model or ""))
