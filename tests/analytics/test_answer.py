"""Answers built column-wise (analytics.answer) against independent references: ratios from
``fractions.Fraction`` (its ``round`` is half-even), the JSON against ``json.dumps`` of
``row_to_dict``, the order against Python's sort of the rows' shown values."""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from spendgate.analytics.answer import _floats, answer_json, answer_rows, answer_table, ranking
from spendgate.analytics.measures import tenths
from spendgate.analytics.query import ORDERS, SpendQuery, SpendRow, row_to_dict
from spendgate.store.schema import ROLLUP_MEASURES
from spendgate.store.slot_sums import sums_schema
from spendgate.store.spend_sql import DISTINCT_MEASURES

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
GROUP = ("user_id", "model_id")
MEASURES = (*ROLLUP_MEASURES, *DISTINCT_MEASURES)
NAMES = ["alice", "bob", 'qu"ote\\back', "line\nbreak\t", "ünï €", "\x01ctl", ""]


def random_sums(rng: random.Random, count: int) -> pa.Table:
    """Summed spend as ``sum_spend`` returns it (unique group and slot per row), with zeros,
    small and large values, missing keys and keys that JSON must escape."""

    def value(name: str) -> int:
        if rng.random() < 0.15:
            return 0
        if name.endswith("_pico"):  # a sum of remainders can pass 10**6
            return rng.randint(0, 10**8)
        if name.endswith("_micro"):  # up to $9.2 trillion
            return rng.randint(0, 10 ** rng.randint(0, 18))
        return rng.randint(0, 10 ** rng.randint(0, 12))

    seen: set[tuple[Any, ...]] = set()
    keys: list[tuple[Any, ...]] = []
    while len(keys) < count:
        key = (
            None if rng.random() < 0.1 else f"{rng.choice(NAMES)}{rng.randint(0, 30)}",
            rng.choice(["m1", "m2", None]),
            SINCE + timedelta(hours=rng.randint(0, 5)),
        )
        if key not in seen:
            seen.add(key)
            keys.append(key)
    fields = (*GROUP, "slot")
    columns: dict[str, list[Any]] = {f: [key[i] for key in keys] for i, f in enumerate(fields)}
    for name in MEASURES:
        columns[name] = [value(name) for _ in range(count)]
    columns["requests"] = [max(1, n) for n in columns["requests"]]
    return pa.table(columns, schema=sums_schema(GROUP, True, MEASURES))


def query(order: str = "-cost", limit: int | None = None) -> SpendQuery:
    return SpendQuery.of(
        SINCE,
        SINCE + timedelta(days=1),
        group_by=GROUP,
        bucket="hour",
        order=order,
        limit=limit,
        sessions=True,
    )


def half_even(value: Fraction, places: int) -> Decimal:
    return Decimal(round(value * 10**places)).scaleb(-places)


def reference(sums: dict[str, int]) -> dict[str, Decimal | None]:
    """Each ratio from exact fractions, rounded half-even to its shown places."""
    cost = Fraction(sums["cost_micro"] * 10**6 + sums["cost_pico"], 10**12)
    writes = sums["cache_write_5m_tokens"] + sums["cache_write_1h_tokens"]
    prompt = sums["input_tokens"] + sums["cache_read_tokens"] + writes
    tokens = prompt + sums["output_tokens"]
    session = Fraction(sums["session_cost_micro"] * 10**6 + sums["session_cost_pico"], 10**12)
    return {
        "cost_per_1k_tokens": half_even(cost * 1000 / tokens, 12) if tokens else None,
        "cost_per_request": half_even(cost / sums["requests"], 12),
        "cache_hit_rate": half_even(Fraction(sums["cache_read_tokens"], prompt), 6)
        if prompt
        else None,
        "cost_per_session": half_even(session / sums["sessions"], 12) if sums["sessions"] else None,
    }


def test_ratios_are_exact_quotients_rounded_half_even() -> None:
    sums = random_sums(random.Random(7), 400)
    # exact halves, where rounding half-up and half-even differ: 2.5 -> 2, 7.5 -> 8 pusd
    halves = {"cost_micro": 0, "cost_pico": 5, "requests": 2, "input_tokens": 0}
    halves |= {"cache_read_tokens": 1, "cache_write_5m_tokens": 0, "cache_write_1h_tokens": 0}
    halves |= {"output_tokens": 0, "sessions": 2, "session_cost_micro": 0, "session_cost_pico": 15}
    rows = sums.to_pylist()
    for index, extra in enumerate((halves, {**halves, "cost_pico": 15, "input_tokens": 1999999})):
        rows[index] |= extra
    sums = pa.Table.from_pylist(rows, schema=sums.schema)
    table = answer_table(sums, query(order="user_id"))
    answered = {
        (r.keys["user_id"], r.keys["model_id"], r.bucket): r for r in answer_rows(table, GROUP)
    }
    assert len(answered) == sums.num_rows
    for row in rows:
        got = answered[(row["user_id"], row["model_id"], row["slot"])]
        want = reference(row)
        assert {name: getattr(got, name) for name in want} == want
    first, second = (answered[(r["user_id"], r["model_id"], r["slot"])] for r in rows[:2])
    assert first.cost_per_request == Decimal("2E-12") and first.cache_hit_rate == Decimal(1)
    assert second.cost_per_request == Decimal("8E-12")  # 15 / 2 = 7.5 -> 8
    assert second.cache_hit_rate == Decimal("0.000000")  # 1 / 2,000,000 = 0.0000005 -> 0


@pytest.mark.parametrize("seed", range(3))
def test_the_json_is_row_to_dict_of_the_rows(seed: int) -> None:
    sums = random_sums(random.Random(seed), 300)
    for latency in (True, False):
        asked = query()
        if not latency:
            asked = SpendQuery.of(asked.since, asked.until, group_by=GROUP, latency=False)
            sums = sums.select([*GROUP, *(n for n in sums.column_names if n in MEASURES)])
        table = answer_table(sums, asked)
        text = answer_json(table, asked.group_by)
        expected = [row_to_dict(row) for row in answer_rows(table, asked.group_by)]
        assert json.loads(text) == expected
        assert text == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))


def test_the_json_of_a_table_in_chunks_and_slices() -> None:
    """The rows are read from the text column's buffers: chunks and slices (an offset into
    the buffers) give the same text as one whole table."""
    table = answer_table(random_sums(random.Random(5), 200), query())
    whole = answer_json(table, GROUP)
    parts = pa.concat_tables([table.slice(0, 70), table.slice(70, 1), table.slice(71)])
    assert parts["cost_micro"].num_chunks == 3
    assert answer_json(parts, GROUP) == whole
    middle = answer_json(table.slice(50, 100), GROUP)
    assert json.loads(middle) == json.loads(whole)[50:150]


@pytest.mark.parametrize("rows", [1, 2, 3, 150])
def test_a_big_answer_written_in_halves_is_the_same_json(
    rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = answer_table(random_sums(random.Random(rows), rows), query())
    whole = answer_json(table, GROUP)
    # the package's ``answer`` is the function: the module by its name
    monkeypatch.setattr(sys.modules["spendgate.analytics.answer"], "_HALVED_ROWS", 2)
    assert answer_json(table, GROUP) == whole


def test_an_empty_answer() -> None:
    empty = sums_schema(GROUP, True, MEASURES).empty_table()
    table = answer_table(empty, query())
    assert (answer_rows(table, GROUP), answer_json(table, GROUP)) == ([], "[]")


def shown(row: SpendRow, name: str) -> Any:
    return row.measure(name)


@pytest.mark.parametrize("order", [*ORDERS, "user_id", "model_id"])
def test_answers_are_ordered_by_the_shown_values(order: str) -> None:
    sums = random_sums(random.Random(3), 300)
    for direction in ("", "-"):
        rows = answer_rows(answer_table(sums, query(order=direction + order)), GROUP)
        # Python's stable sort of the rows in tie order (bucket, then groups, missing last)
        ties = sorted(
            rows,
            key=lambda r: (
                r.bucket,
                *((r.keys[f] is None, r.keys[f] or "") for f in GROUP),
            ),
        )
        present = [r for r in ties if shown(r, order) is not None]
        present.sort(key=lambda r: shown(r, order), reverse=direction == "-")
        expected = present + [r for r in ties if shown(r, order) is None]
        assert rows == expected, direction + order
        limited = answer_rows(answer_table(sums, query(direction + order, limit=7)), GROUP)
        assert limited == expected[:7]


@pytest.mark.parametrize("order", ["-cost", "cost", "-requests", "requests"])
def test_the_groups_ranked_first_hold_the_top_rows(order: str) -> None:
    """``ranking`` picks the values of a group field from the requests and spend alone; the
    rows of those values answer the same top rows as every row (ties with the last included:
    requests repeat)."""
    sums = random_sums(random.Random(5), 300)
    limited = query(order, limit=7)
    rank = ranking(limited)
    assert rank is not None
    narrow = sums.select(["user_id", "slot", "requests", "cost_micro", "cost_pico"])
    picked = rank(narrow, "user_id")
    assert picked is not None and len(picked) < len(pc.unique(sums["user_id"])) / 2
    kept = sums.filter(pc.is_in(pc.fill_null(sums["user_id"], ""), value_set=pa.array(picked)))
    top = answer_rows(answer_table(sums, limited), GROUP)
    assert answer_rows(answer_table(kept, limited), GROUP) == top
    assert {row.keys["user_id"] or "" for row in top} <= set(picked)


def test_only_short_limits_by_cost_or_requests_are_ranked_first() -> None:
    assert ranking(query("-cost_per_request", limit=7)) is None  # a ratio: every measure
    assert ranking(query("-cost")) is None  # no limit
    assert ranking(query("-cost", limit=5001)) is None  # too many values for the SQL
    sums = random_sums(random.Random(5), 10)
    rank = ranking(query("-cost", limit=10))
    assert rank is not None and rank(sums, "user_id") is None  # no more rows than the limit


def test_sums_beyond_what_is_exact_raise_instead_of_wrapping() -> None:
    rows = random_sums(random.Random(1), 3).to_pylist()
    rows[0] |= {"input_tokens": 10**17, "cost_micro": 10**12}  # 10^17 tokens: 1000 x remainder
    sums = pa.Table.from_pylist(rows, schema=sums_schema(GROUP, True, MEASURES))
    with pytest.raises(pa.ArrowInvalid, match="overflow"):
        answer_table(sums, query())
    rows[0] |= {"input_tokens": 5, "cost_micro": -1}
    sums = pa.Table.from_pylist(rows, schema=sums_schema(GROUP, True, MEASURES))
    with pytest.raises(ValueError, match="negative cost"):
        answer_table(sums, query())


def awkward_floats() -> list[float]:
    """Floats where rounding to tenths is hard: halves of tenths as written (most not exact
    in binary) and their neighbours a few ulps away, at every magnitude, exact tenths, and
    values past the bounds where the column-wise paths step aside."""
    rng = random.Random(17)
    values = [0.0, -0.0, 0.25, 0.35, 2.675, 1.45, -0.25, -1.35, 1e9 - 0.05, 1e9 + 0.25]
    values += [5e-324, 0.04999999999999999, 1e14 - 0.1, 1e14, 1e15 + 0.3, 2.0**53, 1e16, 1e300]
    for scale in (1, 100, 10**4, 10**7, 10**10, 10**13):
        for _ in range(300):
            half = (rng.randrange(10 * scale) * 10 + 5) / 100  # x.x5
            values.append(half)
            values += [float(np.nextafter(half, side)) for side in (0.0, 1e300)]
            values.append(rng.randrange(10 * scale) / 10)  # a tenth
            values.append(rng.uniform(0, scale))
    return values


def test_tenths_are_pythons_round_and_written_as_repr() -> None:
    """``measures.tenths`` (column-wise) gives each value what ``round(v, 1)`` gives, and the
    JSON text of floats (``answer._floats``) is what ``json.dumps`` writes, nulls kept."""
    values = awkward_floats()
    rounded = tenths(pa.array([*values, None], pa.float64())).to_pylist()
    assert rounded[-1] is None
    for value, got in zip(values, rounded, strict=False):
        assert repr(got) == repr(round(value, 1)), value
    for floats in (rounded, [*values, None]):
        text = _floats(pa.chunked_array([pa.array(floats, pa.float64())])).to_pylist()
        assert text == [None if f is None else json.dumps(f) for f in floats]
