"""Events as CSV, JSON or Parquet, written chunk by chunk (any number of events, bounded memory).

Every format holds every ``Event`` field, named as in ``spendgate.events``. Times are ISO 8601
UTC (``…Z``; Parquet: ``timestamp[us, UTC]``); ``cost_usd`` is a decimal string (Parquet:
``decimal128(38, 12)``, exact); ``tags`` and ``prefix_hashes`` are JSON text in CSV and Parquet.
Unpriced events keep an empty cost and ``unpriced = true``: never a silent zero.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from spendgate.analytics.query import money_text
from spendgate.errors import ConfigError
from spendgate.events import Event
from spendgate.store.schema import FILTERABLE

FORMATS = ("csv", "json", "parquet")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}
COLUMNS = tuple(f.name for f in fields(Event))
_JSON_TEXT = ("tags", "prefix_hashes")
Progress = Callable[[int], None]


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_filters(filters: Mapping[str, str]) -> dict[str, str]:
    """Export filters checked: known event filters (``FILTERABLE``), each with a value."""
    unknown = sorted(set(filters) - set(FILTERABLE))
    if unknown:
        raise ConfigError(
            f"unknown event filter {', '.join(unknown)}; filter on: {', '.join(FILTERABLE)}"
        )
    empty = sorted(name for name, value in filters.items() if not value)
    if empty:
        raise ConfigError(f"filter {', '.join(empty)} needs a value")
    return dict(filters)


def record(event: Event) -> dict[str, Any]:
    """``event`` as a flat JSON-ready dict (times ISO, money as a decimal string)."""
    doc = event.to_dict()
    doc["ts"], doc["ts_end"] = _iso(event.ts), _iso(event.ts_end)
    doc["cost_usd"] = money_text(event.cost_usd)
    return doc


def csv_text(chunks: Iterable[list[Event]], progress: Progress | None = None) -> Iterator[str]:
    """CSV text (header first), one piece per chunk of events."""
    buffer = _Buffer()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    yield buffer.take()
    for chunk in chunks:
        for event in chunk:
            row = record(event)
            for name in _JSON_TEXT:
                row[name] = json.dumps(row[name], sort_keys=True, separators=(",", ":"))
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        if progress is not None:
            progress(len(chunk))
        yield buffer.take()


def json_text(chunks: Iterable[list[Event]], progress: Progress | None = None) -> Iterator[str]:
    """One JSON array of event objects, one piece per chunk of events."""
    yield "["
    first = True
    for chunk in chunks:
        pieces = [json.dumps(record(e), ensure_ascii=False, separators=(",", ":")) for e in chunk]
        if pieces:
            yield ("" if first else ",") + ",".join(pieces)
            first = False
        if progress is not None:
            progress(len(chunk))
    yield "]\n"


def parquet_schema() -> pa.Schema:
    """The Parquet schema of an export: one typed column per event field."""
    types: dict[str, pa.DataType] = {}
    for f in fields(Event):
        kind = str(f.type)
        if f.name in ("ts", "ts_end"):
            types[f.name] = pa.timestamp("us", tz="UTC")
        elif f.name == "cost_usd":
            types[f.name] = pa.decimal128(38, 12)
        elif kind.startswith("int"):
            types[f.name] = pa.int64()
        elif kind.startswith("bool"):
            types[f.name] = pa.bool_()
        else:
            types[f.name] = pa.string()
    return pa.schema([(name, types[name]) for name in COLUMNS])


def write_parquet(
    chunks: Iterable[list[Event]], out: Path | IO[bytes], progress: Progress | None = None
) -> None:
    """Parquet (one row group per chunk) to a path or a binary file object."""
    schema = parquet_schema()
    with pq.ParquetWriter(out, schema) as writer:
        wrote = False
        for chunk in chunks:
            if chunk:
                writer.write_table(pa.Table.from_pylist([_parquet_row(e) for e in chunk], schema))
                wrote = True
            if progress is not None:
                progress(len(chunk))
        if not wrote:
            writer.write_table(schema.empty_table())


def _parquet_row(event: Event) -> dict[str, Any]:
    row = event.to_dict()
    if row["cost_usd"] is not None:
        row["cost_usd"] = row["cost_usd"].quantize(Decimal("1E-12"))
    for name in _JSON_TEXT:
        row[name] = json.dumps(row[name], sort_keys=True, separators=(",", ":"))
    return row


class _Buffer:
    """A write-only text sink that hands over what was written since the last ``take``."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def take(self) -> str:
        text = "".join(self._parts)
        self._parts.clear()
        return text
