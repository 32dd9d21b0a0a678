"""The slots the rollup cache holds (``store.rollup_cache``): each a rollup slot's rows as an
Arrow table with the writer's token it was read under, keyed by (rollup, sheet, bucket), least
recently used first. Past ``max_bytes`` the least recently used are dropped. Not locked: the
cache holds its lock around every call.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

Key = tuple[str, str, datetime]  # rollup, sheet, bucket


@dataclass(frozen=True, slots=True)
class Slot:
    token: str
    table: pa.Table
    size: int  # bytes of its buffers (``pa.Table.nbytes`` walks them: ~0.1 ms a slot)

    @classmethod
    def of(cls, token: str, table: pa.Table) -> Slot:
        return cls(token, table, table.get_total_buffer_size())


def newest_within(
    saved: Sequence[tuple[Key, str, pa.Table]], room: float
) -> list[tuple[Key, Slot]]:
    """Of ``saved`` (key, token, rows; least recently used first), the most recently used
    slots that fit in ``room`` bytes, the most recently used first."""
    slots = []
    for key, token, rows in reversed(saved):
        slot = Slot.of(token, rows)
        room -= slot.size
        if room < 0:
            break
        slots.append((key, slot))
    return slots


class HeldSlots:
    """Slots by key, least recently used first, within ``max_bytes`` (one is always kept)."""

    def __init__(self, max_bytes: float) -> None:
        self._max_bytes = max_bytes
        self._slots: OrderedDict[Key, Slot] = OrderedDict()
        self.size_bytes = 0

    def __len__(self) -> int:
        return len(self._slots)

    def tables(self) -> set[str]:
        """The rollups with slots held."""
        return {table for table, _, _ in self._slots}

    def items(self) -> list[tuple[Key, Slot]]:
        """Every slot, least recently used first."""
        return list(self._slots.items())

    def peek(self, key: Key) -> Slot | None:
        """The slot held under ``key`` (not marked as used)."""
        return self._slots.get(key)

    def used(self, key: Key, token: str) -> pa.Table | None:
        """The rows held under ``key`` if their token is ``token`` (marked as used), else
        ``None``."""
        held = self._slots.get(key)
        if held is None or held.token != token:
            return None
        self._slots.move_to_end(key)
        return held.table

    def put(self, key: Key, slot: Slot) -> None:
        """Hold ``slot`` under ``key`` (replacing what was), as the most recently used."""
        old = self._slots.pop(key, None)
        if old is not None:
            self.size_bytes -= old.size
        self._slots[key] = slot
        self.size_bytes += slot.size
        self._drop_past_max()

    def put_oldest(self, slots: Iterable[tuple[Key, Slot]]) -> None:
        """Hold ``slots`` (the most recently used first) as older than every slot held, each
        before the last; a key already held keeps its slot."""
        for key, slot in slots:
            if key in self._slots:
                continue
            self._slots[key] = slot
            self._slots.move_to_end(key, last=False)
            self.size_bytes += slot.size
        self._drop_past_max()

    def clear(self) -> None:
        self._slots.clear()
        self.size_bytes = 0

    def _drop_past_max(self) -> None:
        while self.size_bytes > self._max_bytes and len(self._slots) > 1:
            _, dropped = self._slots.popitem(last=False)
            self.size_bytes -= dropped.size
