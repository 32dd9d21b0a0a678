"""Spend analytics: questions over stored events, answered from the rollups where possible.

    SpendQuery / SpendRow                 the question and one row of its answer (analytics.query)
    spend(store, query)                   any group-by, filters, time range and bucket
    answer(store, query) / answer_json    the same answer as columns / as the API's JSON rows
    totals / compare / top / series       the views a dashboard needs (analytics.spend)
    models(store, since, until)           models side by side with catalog prices (analytics.models)
    DIMENSIONS, BUCKETS, MEASURES, ORDERS what a query may name; MAX_ROWS, the most it answers

Money is ``Decimal``; see docs/analytics.md for every measure's definition.
"""

from spendgate.analytics.answer import answer_json
from spendgate.analytics.measures import bucket_starts
from spendgate.analytics.models import ModelRow, models
from spendgate.analytics.query import (
    BUCKETS,
    MAX_ROWS,
    MEASURES,
    ORDERS,
    SpendQuery,
    SpendRow,
    money_text,
    ratio_text,
    row_to_dict,
)
from spendgate.analytics.spend import (
    Comparison,
    answer,
    compare,
    rehearse,
    series,
    spend,
    top,
    totals,
)
from spendgate.store.spend import DIMENSIONS
from spendgate.store.types import bucket_start

__all__ = [
    "BUCKETS",
    "DIMENSIONS",
    "MAX_ROWS",
    "MEASURES",
    "ORDERS",
    "Comparison",
    "ModelRow",
    "SpendQuery",
    "SpendRow",
    "answer",
    "answer_json",
    "bucket_start",
    "bucket_starts",
    "compare",
    "models",
    "money_text",
    "ratio_text",
    "rehearse",
    "row_to_dict",
    "series",
    "spend",
    "top",
    "totals",
]
