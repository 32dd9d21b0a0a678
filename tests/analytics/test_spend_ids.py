"""Distinct ids counted from a part's rows (``spend_ids.distinct``), against counts made here
with Python sets, on every path it takes: a bitmap for a total, passes of array writes, the
rows those leave hashed by Arrow, all of them hashed when the ids spread over many groups,
sparse and overflowing group codes. The whole pipeline is checked against the events by
``test_spend_windows``; these tables are built to reach each path on purpose."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spendgate.store import spend_ids

DAY0 = datetime(2026, 10, 1, tzinfo=UTC)
Row = tuple[int, int, int, int, int, int]  # a, b, day, id, cost_micro, cost_pico


def table(rows: Sequence[Row]) -> pa.Table:
    """Rows laid out as the cache gives a day part's id rows: key codes (``int32``), the
    id's code, the day's slot (ordered by it), requests and spend."""
    ordered = sorted(rows, key=lambda row: row[2])
    columns = list(zip(*ordered, strict=True)) if ordered else [()] * 6
    a, b, day, ids, micro, pico = columns
    return pa.table(
        {
            "a": pa.array(a, pa.int32()),
            "b": pa.array(b, pa.int32()),
            "session_id": pa.array(ids, pa.int32()),
            "slot": pa.array([DAY0 + timedelta(days=d) for d in day], pa.timestamp("us", "UTC")),
            "requests": pa.array([1] * len(ids), pa.int64()),
            "cost_micro": pa.array(micro, pa.int64()),
            "cost_pico": pa.array(pico, pa.int64()),
        }
    )


def by_sets(
    rows: Sequence[Row], grouping: Sequence[str]
) -> dict[tuple[object, ...], tuple[int, ...]]:
    """Per group: its distinct ids and spend, counted with Python sets."""
    ids: defaultdict[tuple[object, ...], set[int]] = defaultdict(set)
    spend: defaultdict[tuple[object, ...], list[int]] = defaultdict(lambda: [0, 0])
    for a, b, day, id_, micro, pico in rows:
        values = {"a": a, "b": b, "slot": DAY0 + timedelta(days=day)}
        key = tuple(values[name] for name in grouping)
        ids[key].add(id_)
        spend[key][0] += micro
        spend[key][1] += pico
    return {key: (len(ids[key]), *spend[key]) for key in ids}


def counted(
    rows: Sequence[Row], grouping: Sequence[str]
) -> dict[tuple[object, ...], tuple[int, ...]]:
    return by_group(spend_ids.distinct(table(rows), grouping, "session_id"), grouping)


def by_group(
    out: pa.Table, grouping: Sequence[str], *, empty: bool = True
) -> dict[tuple[object, ...], tuple[int, ...]]:
    """A count's rows by group (each once; ``empty=False``: a group of no ids and no spend
    is no group)."""
    assert out.column_names == [*grouping, "ids", "cost_micro", "cost_pico"]
    found = {}
    for row in out.to_pylist():
        key = tuple(row[name] for name in grouping)
        assert key not in found, f"group {key} twice"
        if empty or row["ids"] or row["cost_micro"] or row["cost_pico"]:
            found[key] = (row["ids"], row["cost_micro"], row["cost_pico"])
    return found


def spread_rows(rng: random.Random, ids: int, spread_every: int, groups: int) -> list[Row]:
    """Ids with three rows in one group on one day, and every ``spread_every``-th id with a
    row in each of ``groups`` groups, on any of four days."""
    rows = []
    for id_ in range(ids):
        spread = id_ % spread_every == 0
        for key in range(groups) if spread else [rng.randrange(groups)] * 3:
            day = rng.randrange(4) if spread else id_ % 4
            rows.append((key, key % 3, day, id_, rng.randrange(10**6), rng.randrange(10**6)))
    return rows


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows of each table ``distinct`` leaves to Arrow's hashing (the real one)."""
    calls: list[int] = []
    real = spend_ids._hashed

    def spy(rows: pa.Table, grouping: Sequence[str], field: str) -> pa.Table:
        calls.append(rows.num_rows)
        return real(rows, grouping, field)

    monkeypatch.setattr(spend_ids, "_hashed", spy)
    return calls


def test_a_total_counts_each_id_once(hashed: list[int]) -> None:
    rows = spread_rows(random.Random(1), 500, 4, 10)
    assert counted(rows, []) == by_sets(rows, []) == {(): (500, *by_sets(rows, [])[()][1:])}
    assert not hashed


@pytest.mark.parametrize("grouping", [["a"], ["a", "b"], ["a", "slot"], ["slot"]])
def test_ids_mostly_in_one_group_are_counted_by_passes(
    grouping: list[str], hashed: list[int]
) -> None:
    rows = spread_rows(random.Random(2), 2000, 50, 12)
    assert counted(rows, grouping) == by_sets(rows, grouping)
    assert all(n < len(rows) / 4 for n in hashed)  # at most the few spread ids' rows


def test_the_rows_the_passes_leave_are_hashed(hashed: list[int]) -> None:
    # Four ids in five in one group (3 rows), one in five in 10 groups: the first pass sets
    # aside ~60 % of the rows, the second ~11 %: the spread ids' other rows are hashed.
    rows = spread_rows(random.Random(3), 2000, 5, 10)
    assert counted(rows, ["a"]) == by_sets(rows, ["a"])
    assert len(hashed) == 1 and 0 < hashed[0] < len(rows) / 2


def test_ids_in_a_few_groups_each_are_counted_by_passes(hashed: list[int]) -> None:
    # Each id in 2-5 of 40 groups (a session calling a few models): the first pass sets
    # aside ~30 % of the rows, each next one more (43, 53, 69 %, then the rest).
    rng = random.Random(6)
    rows = []
    for id_ in range(3000):
        for key in rng.sample(range(40), rng.randint(2, 5)):
            for _ in range(rng.randint(1, 3)):
                day = rng.randrange(4)
                rows.append((key, key % 3, day, id_, rng.randrange(10**6), rng.randrange(10**6)))
    assert counted(rows, ["a"]) == by_sets(rows, ["a"])
    assert not hashed


def test_ids_spread_over_many_groups_are_all_hashed(hashed: list[int]) -> None:
    rows = spread_rows(random.Random(4), 300, 1, 20)  # every id in every group
    assert counted(rows, ["a", "slot"]) == by_sets(rows, ["a", "slot"])
    assert hashed == [len(rows)]


def test_sparse_and_overflowing_codes(hashed: list[int]) -> None:
    rng = random.Random(5)
    codes = [2**31 - 2, *(rng.randrange(2**31 - 1) for _ in range(40))]
    ids = [rng.randrange(300) for _ in range(1500)]  # an id's rows in one group
    rows = [(codes[i % 41], codes[i * 7 % 41], rng.randrange(3), i, 7, 1) for i in ids]
    assert counted(rows, ["a"]) == by_sets(rows, ["a"])  # codes up to 2**31: packed densely
    assert counted(rows, ["a", "b"]) == by_sets(rows, ["a", "b"])
    assert not hashed
    assert counted(rows, ["a", "b", "slot"]) == by_sets(rows, ["a", "b", "slot"])
    assert hashed == [len(rows)]  # keys of 63 bits and more: hashed


def test_a_few_rows_of_far_apart_ids_are_hashed(hashed: list[int]) -> None:
    rows = [(1, 0, 0, 2**30 + 5, 3, 1), (1, 0, 1, 2**30 + 5, 4, 1), (2, 0, 0, 7, 5, 0)]
    assert counted(rows, ["a"]) == by_sets(rows, ["a"]) == {(1,): (1, 7, 2), (2,): (1, 5, 0)}
    assert counted(rows, []) == by_sets(rows, []) == {(): (2, 12, 2)}
    assert hashed == [3, 3]  # not arrays of 2**30 codes


def test_negative_numbers_are_hashed(hashed: list[int]) -> None:
    ids_below_zero = [(1, 0, 0, 3, 1, 0), (2, 0, 0, 3, 1, 0), (2, 0, 1, -3, 1, 0)]
    keys_below_zero = [(-1, 0, 0, 3, 1, 0), (2, 0, 0, 3, 1, 0), (-1, 0, 1, 4, 1, 0)]
    for rows in (ids_below_zero, keys_below_zero):
        assert counted(rows, ["a"]) == by_sets(rows, ["a"])
    assert hashed == [3, 3]


def test_no_rows() -> None:
    assert counted([], ["a", "slot"]) == {}
    assert counted([], []) == {(): (0, 0, 0)}


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 6),
            st.sampled_from([0, 1, 2**31 - 2]),
            st.integers(0, 3),
            st.integers(0, 40),
            st.integers(0, 10**9),
            st.integers(0, 10**6),
        ),
        max_size=300,
    ),
    grouping=st.sampled_from(
        [[], ["a"], ["b"], ["a", "b"], ["a", "slot"], ["b", "slot"], ["slot"]]
    ),
)
def test_any_rows_match_sets(rows: list[Row], grouping: list[str]) -> None:
    expected = by_sets(rows, grouping) or ({} if grouping else {(): (0, 0, 0)})
    assert counted(rows, grouping) == expected


# Signed rows, as ``count`` adds up parts (a subtracted part's requests and spend negated):
# a, b, day, id, requests, cost_micro, cost_pico.
Signed = tuple[int, int, int, int, int, int, int]


def signed_table(rows: Sequence[Signed]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [()] * 7
    a, b, day, ids, requests, micro, pico = columns
    return pa.table(
        {
            "a": pa.array(a, pa.int32()),
            "b": pa.array(b, pa.int32()),
            "session_id": pa.array(ids, pa.int32()),
            "slot": pa.array([DAY0 + timedelta(days=d) for d in day], pa.timestamp("us", "UTC")),
            "requests": pa.array(requests, pa.int64()),
            "cost_micro": pa.array(micro, pa.int64()),
            "cost_pico": pa.array(pico, pa.int64()),
        }
    )


def by_net_sums(
    rows: Sequence[Signed], grouping: Sequence[str]
) -> dict[tuple[object, ...], tuple[int, ...]]:
    """Per group: the ids whose requests add up to other than 0 there, and their spend."""
    net: defaultdict[tuple[object, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    for a, b, day, id_, requests, micro, pico in rows:
        values = {"a": a, "b": b, "slot": DAY0 + timedelta(days=day)}
        sums = net[(*(values[name] for name in grouping), id_)]
        for index, value in enumerate((requests, micro, pico)):
            sums[index] += value
    out: defaultdict[tuple[object, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (*key, _), (requests, micro, pico) in net.items():
        if requests:
            found = out[tuple(key)]
            found[0] += 1
            found[1] += micro
            found[2] += pico
    return {key: tuple(sums) for key, sums in out.items()}


def net_counted(
    rows: Sequence[Signed], grouping: Sequence[str]
) -> dict[tuple[object, ...], tuple[int, ...]]:
    out = spend_ids._net_counts(signed_table(rows), grouping, "session_id")
    return by_group(out, grouping, empty=False)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 6),
            st.sampled_from([0, 1, 2**31 - 2]),
            st.integers(0, 3),
            st.integers(0, 40),
            st.integers(-3, 3),
            st.integers(-(10**9), 10**9),
            st.integers(-(10**6), 10**6),
        ),
        max_size=300,
    ),
    grouping=st.sampled_from(
        [[], ["a"], ["b"], ["a", "b"], ["a", "slot"], ["b", "slot"], ["slot"]]
    ),
)
def test_signed_parts_are_counted_by_their_net_requests(
    rows: list[Signed], grouping: list[str]
) -> None:
    assert net_counted(rows, grouping) == by_net_sums(rows, grouping)


def test_a_part_taken_away_is_counted_by_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session's rows, less its rows with a workflow (the sessions with none): ids in one
    or two groups each cancel exactly or not; every pair is counted by the passes."""
    hashed: list[int] = []
    real = spend_ids._counts

    def spy(table: pa.Table, grouping: Sequence[str]) -> pa.Table:
        hashed.append(table.num_rows)
        return real(table, grouping)

    monkeypatch.setattr(spend_ids, "_counts", spy)
    rng = random.Random(8)
    rows: list[Signed] = []
    for id_ in range(5000):
        for key in rng.sample(range(8), rng.randint(1, 2)):
            day = rng.randrange(4)
            calls = rng.randint(1, 5)
            micro = rng.randrange(10**6)
            rows.append((key, key % 3, day, id_, calls, micro, 7))
            if rng.random() < 0.6:  # some or all of those calls had a workflow
                with_one = rng.randint(1, calls)
                rows.append((key, key % 3, day, id_, -with_one, -micro // 2, -7))
    assert net_counted(rows, ["a"]) == by_net_sums(rows, ["a"])
    assert net_counted(rows, ["a", "slot"]) == by_net_sums(rows, ["a", "slot"])
    assert not hashed


def test_sums_past_doubles_are_added_as_integers() -> None:
    """Money beyond 2**53 per id (no double holds it exactly) is summed with integer adds."""
    big = 2**61 + 1
    rows: list[Signed] = [
        (0, 0, 0, 1, 2, big, 3),
        (0, 0, 0, 1, -1, -(2**60), -1),
        (0, 0, 0, 2, 1, big, 5),
        (1, 0, 0, 2, 1, 7, 1),
        (0, 0, 0, 3, 1, 9, 9),
        (0, 0, 0, 3, -1, -9, -9),  # cancels: not counted
    ]
    assert net_counted(rows, ["a"]) == {(0,): (2, 2 * big - 2**60, 7), (1,): (1, 7, 1)}
    assert net_counted(rows, ["a"]) == by_net_sums(rows, ["a"])


# Parts of a question by an id or by both ids, added up at the ids' codes
# (``spend_ids.summed_at_ids``): signed rows keyed by session and workflow codes (0: ``''``).
Part = tuple[int, int, int, int, int]  # session, workflow, requests, cost_micro, cost_pico


def part_table(rows: Sequence[Part]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [()] * 5
    return pa.table(
        {
            "session_id": pa.array(columns[0], pa.int32()),
            "workflow_id": pa.array(columns[1], pa.int32()),
            **{
                name: pa.array(values, pa.int64())
                for name, values in zip(
                    ("requests", "cost_micro", "cost_pico"), columns[2:], strict=True
                )
            },
        }
    )


def summed_at(rows: Sequence[Part], keys: Sequence[str]) -> dict[tuple[int, ...], tuple[int, ...]]:
    """``summed_at_ids``' sums by group (each group once), checked against Python's sums."""
    out = spend_ids.summed_at_ids(part_table(rows), keys, ("requests", "cost_micro", "cost_pico"))
    assert out is not None
    assert out.column_names == [*keys, "requests", "cost_micro", "cost_pico"]
    assert out.schema.field(keys[0]).type == pa.int32()
    found: dict[tuple[int, ...], tuple[int, ...]] = {}
    for row in out.to_pylist():
        key = tuple(row[name] for name in keys)
        assert key not in found, f"group {key} twice"
        found[key] = (row["requests"], row["cost_micro"], row["cost_pico"])
    sums: defaultdict[tuple[int, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    for session, workflow, *measures in rows:
        key = (
            (session, workflow)
            if len(keys) == 2
            else (session if keys[0] == "session_id" else workflow,)
        )
        if keys[0] == "workflow_id" and len(keys) == 2:
            key = (workflow, session)
        for index, value in enumerate(measures):
            sums[key][index] += value
    assert found == {key: tuple(value) for key, value in sums.items()}
    return found


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([0, 0, 1, 2, 3, 9, 40]),
            st.sampled_from([0, 0, 1, 2, 5, 70]),
            st.integers(-3, 3),
            st.integers(-(10**9), 10**9),
            st.integers(-(10**6), 10**6),
        ),
        min_size=1,
        max_size=300,
    ),
    keys=st.sampled_from(
        [
            ["session_id", "workflow_id"],
            ["workflow_id", "session_id"],
            ["session_id"],
            ["workflow_id"],
        ]
    ),
)
def test_parts_added_up_at_the_ids_codes_match_python_sums(
    rows: list[Part], keys: list[str]
) -> None:
    summed_at(rows, keys)


def test_a_month_by_both_ids_is_added_up_in_passes_not_hashed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shape of a top 100 by both ids: sessions with and without a workflow, each
    workflow in one session, the rows with both taken away from each id's sheet; every
    group is summed by the passes (nothing hashed), and sums past 2**53 exactly."""
    hashed: list[int] = []
    real = spend_ids.sum_by

    def spy(table: pa.Table, keys: Sequence[str], measures: Sequence[str]) -> pa.Table:
        hashed.append(table.num_rows)
        return real(table, keys, measures)

    monkeypatch.setattr(spend_ids, "sum_by", spy)
    rng = random.Random(3)
    rows: list[Part] = []
    for session in range(1, 3000):
        requests, micro = rng.randint(1, 9), rng.randrange(10**9)
        rows.append((session, 0, requests, micro, 1))  # the session sheet
        if rng.random() < 0.5:
            workflow = 5000 + session
            both = rng.randint(1, requests)
            rows.append((session, workflow, both, micro // 3, 1))  # the sheet of both
            rows.append((session, 0, -both, -(micro // 3), -1))  # less it, by session
            rows.append((0, workflow, both, micro // 3, 1))  # the workflow sheet
            rows.append((0, workflow, -both, -(micro // 3), -1))  # less both, by workflow
    rows.append((0, 0, 5, 2**61, 0))
    rows.append((0, 0, 1, 2**61, 0))
    found = summed_at(rng.sample(rows, len(rows)), ["session_id", "workflow_id"])
    assert found[(0, 0)] == (6, 2**62, 0)
    assert not hashed


def test_not_codes_are_left_to_hashing() -> None:
    table = part_table([(1, 2, 1, 1, 1)])
    strings = table.set_column(0, "session_id", pa.array(["s"]))
    assert spend_ids.summed_at_ids(strings, ["session_id", "workflow_id"], ["requests"]) is None
    negative = table.set_column(0, "session_id", pa.array([-1], pa.int32()))
    assert spend_ids.summed_at_ids(negative, ["session_id"], ["requests"]) is None
    assert spend_ids.summed_at_ids(table, [], ["requests"]) is None
    assert spend_ids.summed_at_ids(table.slice(0, 0), ["session_id"], ["requests"]) is None
