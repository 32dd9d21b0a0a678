"""``store.held_slots``: the rollup cache's slots, least recently used dropped past its size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from spendgate.store.held_slots import HeldSlots, Key, Slot, newest_within

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def key(hour: int) -> Key:
    return ("spend_hourly", "", T0 + timedelta(hours=hour))


def slot(token: str, rows: int = 100) -> Slot:
    return Slot.of(token, pa.table({"requests": pa.array(range(rows), pa.int64())}))


def test_a_slot_is_used_only_with_its_token_and_the_least_recently_used_go_first() -> None:
    size = slot("a").size
    held = HeldSlots(3 * size)
    for hour in range(3):
        held.put(key(hour), slot(f"t{hour}"))
    assert held.used(key(0), "old") is None  # another token: not this copy
    assert held.used(key(0), "t0") is not None  # and now the most recently used
    held.put(key(3), slot("t3"))
    assert [k for k, _ in held.items()] == [key(2), key(0), key(3)]  # hour 1 dropped
    assert len(held) == 3 and held.size_bytes == 3 * size
    held.put(key(2), slot("t2b"))  # replaced, not added
    assert held.size_bytes == 3 * size and held.peek(key(2)) == slot("t2b")
    assert held.tables() == {"spend_hourly"}
    held.clear()
    assert len(held) == 0 and held.size_bytes == 0


def test_one_slot_bigger_than_the_whole_size_is_still_held() -> None:
    held = HeldSlots(10)
    held.put(key(0), slot("a"))
    assert len(held) == 1 and held.used(key(0), "a") is not None


def test_slots_read_back_are_older_than_those_held_and_do_not_replace_them() -> None:
    size = slot("a").size
    held = HeldSlots(4 * size)
    held.put(key(9), slot("loaded"))
    held.put_oldest([(key(2), slot("b2")), (key(1), slot("b1")), (key(9), slot("saved"))])
    assert [k for k, _ in held.items()] == [key(1), key(2), key(9)]
    assert held.used(key(9), "loaded") is not None  # loaded meanwhile: kept
    held.put_oldest([(key(3), slot("b3")), (key(4), slot("b4"))])
    assert [k for k, _ in held.items()] == [key(3), key(1), key(2), key(9)]  # key(4) dropped


def test_newest_within_takes_the_most_recently_used_that_fit() -> None:
    size = slot("a").size
    saved = [(key(hour), f"t{hour}", slot("x").table) for hour in range(5)]  # oldest first
    assert [k for k, _ in newest_within(saved, 2.5 * size)] == [key(4), key(3)]
    assert newest_within(saved, size - 1) == []
    assert [s.token for _, s in newest_within(saved, 10 * size)] == ["t4", "t3", "t2", "t1", "t0"]
