"""The integer codes the rollup cache keeps key values as (``store.rollup_cache``): one
dictionary per column, growing only, so a code once given never changes. Not thread-safe: the
cache calls it holding its lock.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa


class ValueCodes:
    """Per column: each value's ``int32`` code, the values by code (a list, and an Arrow array
    to decode with)."""

    def __init__(self) -> None:
        self._codes: defaultdict[str, dict[str, int]] = defaultdict(dict)  # by column
        self._values: defaultdict[str, list[str]] = defaultdict(list)
        self._decoders: dict[str, pa.Array] = {}  # by column: its values as an Arrow array

    def code_of(self, column: str, value: str) -> int | None:
        """The code of ``value`` (``None``: no slot has held it)."""
        return self._codes[column].get(value)

    def dictionaries(self) -> dict[str, pa.Array]:
        """Every column's values, by code (what a snapshot saves)."""
        return {column: self.decoder(column) for column in self._values}

    def decoder(self, column: str) -> pa.Array:
        """The values of ``column`` so far, by code, as an Arrow array: extended as the
        dictionary grows, never copied per question."""
        known = self._values[column]
        array = self._decoders.get(column)
        if array is None or len(array) < len(known):
            start = 0 if array is None else len(array)
            tail = pa.array(known[start:], pa.string())
            array = tail if array is None else pa.concat_arrays([array, tail])
            self._decoders[column] = array
        return array

    def coded(self, column: str, values: pa.Array) -> pa.Array:
        """``values`` of ``column`` (strings) as their codes (new values get new codes)."""
        encoded = values.dictionary_encode()
        known, names = self._codes[column], self._values[column]
        remap = []
        for value in encoded.dictionary.to_pylist():
            if value not in known:
                known[value] = len(names)
                names.append(value)
            remap.append(known[value])
        return pa.array(remap, pa.int32()).take(encoded.indices)

    def encoded(self, rows: pa.Table) -> pa.Table:
        """A slot's rows with key values (its string columns) as their codes."""
        for index, field in enumerate(rows.schema):
            if pa.types.is_string(field.type):
                coded = self.coded(field.name, rows[index].combine_chunks())
                rows = rows.set_column(index, field.name, coded)
        return rows.combine_chunks()

    def merged(self, column: str, values: pa.Array) -> pa.Array | None:
        """A snapshot's dictionary of ``column`` (distinct values) merged into these: the
        codes its codes become (``None``: the same)."""
        names = self._values[column]
        if not names:
            names.extend(values.to_pylist())
            self._codes[column].update(zip(names, range(len(names)), strict=True))
            self._decoders[column] = values  # not rebuilt from the list (1.5 M session ids)
            return None
        remap = self.coded(column, values)
        return None if remap.equals(pa.array(np.arange(len(remap), dtype=np.int32))) else remap


def recoded(rows: pa.Table, remaps: dict[str, pa.Array | None]) -> pa.Table:
    """A snapshot's slot with its coded columns' codes made these dictionaries' (``remaps``: by
    column, the codes they become; ``None`` where the same)."""
    for index, name in enumerate(rows.column_names):
        remap = remaps.get(name)
        if remap is not None:
            rows = rows.set_column(index, name, remap.take(rows[index]))
    return rows.combine_chunks()
