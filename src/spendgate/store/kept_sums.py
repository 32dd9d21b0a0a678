"""The sums the rollup cache keeps for a repeated question (``store.rollup_cache``): a part's
sums, keyed by everything they depend on (the rollup, the question's shape, the tokens of
every slot read), with what a query derived from them; least recently asked dropped first
past a size. Not thread-safe: the cache calls it holding its lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import pyarrow as pa


class KeptSums:
    """Tables by what was asked, within ``limit`` bytes (``0``: none kept)."""

    def __init__(self, limit: float) -> None:
        self._limit = limit
        self._tables: OrderedDict[Hashable, pa.Table] = OrderedDict()
        self._bytes = 0
        self._derived: dict[int, dict[Hashable, Any]] = {}  # by id() of a kept table

    def get(self, asked: Hashable) -> pa.Table | None:
        """The table kept for ``asked`` (now the most recently asked), or ``None``."""
        table = self._tables.get(asked)
        if table is not None:
            self._tables.move_to_end(asked)
        return table

    def put(self, asked: Hashable, table: pa.Table) -> None:
        """Keep ``table`` for ``asked`` (not if it alone is past the limit)."""
        if asked in self._tables or table.nbytes > self._limit or self._limit <= 0:
            return
        self._tables[asked] = table
        self._bytes += table.nbytes
        self._derived[id(table)] = {}
        while self._bytes > self._limit:
            _, dropped = self._tables.popitem(last=False)
            self._bytes -= dropped.nbytes
            del self._derived[id(dropped)]

    def derived(self, table: pa.Table) -> dict[Hashable, Any] | None:
        """What was derived from ``table`` by key, while it is kept (``None``: not kept); an
        entry lives while its table does, so its id is not reused meanwhile."""
        return self._derived.get(id(table))

    def clear(self) -> None:
        self._tables.clear()
        self._bytes = 0
        self._derived.clear()
