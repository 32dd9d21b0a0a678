"""Column types that make both engines store the same values.

- ``UTCDateTime``: aware datetimes in, UTC-aware datetimes out. PostgreSQL keeps them as
  ``timestamptz``; SQLite as naive UTC text (``YYYY-MM-DD HH:MM:SS.ffffff``, which sorts in time
  order). A naive datetime is refused rather than guessed at.
- ``JSONText``: JSON as plain text (compact, sorted keys), portable to any engine.
- ``Picodollars``: ``Decimal`` USD in, ``Decimal`` USD out, stored as a ``BIGINT`` count of
  picodollars (1e-12 USD), rounded half-even at 12 decimals. Exact on every engine; the range is
  ±9,223,372 USD per value, so ``SUM`` over many rows belongs to PostgreSQL (``numeric``) or to a
  Python-side sum on SQLite (where an integer ``SUM`` overflows beyond that range).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Text
from sqlalchemy.types import TypeDecorator

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PICO = 12  # decimal places kept: 1 picodollar = Decimal("1E-12") USD
_QUANTUM = Decimal(1).scaleb(-PICO)
_CONTEXT = Context(prec=40)  # enough digits for any BIGINT at 12 places
_BIGINT_MAX = 2**63 - 1


def to_pusd(usd: Decimal) -> int:
    """``usd`` as whole picodollars, rounded half-even; ``ValueError`` if not finite or too big."""
    try:
        exact = usd.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN, context=_CONTEXT)
        pusd = int(exact.scaleb(PICO, context=_CONTEXT))
    except (ArithmeticError, ValueError):  # NaN, infinity, more digits than any BIGINT
        pusd = _BIGINT_MAX + 1
    if abs(pusd) > _BIGINT_MAX:
        raise ValueError(f"cost {usd} USD is not storable: finite, within ±9,223,372 USD")
    return pusd


def from_pusd(pusd: int | Decimal) -> Decimal:
    """Picodollars back to USD with exactly 12 decimal places."""
    return Decimal(pusd).scaleb(-PICO, context=_CONTEXT)


def floor_time(moment: datetime, step: timedelta) -> datetime:
    """The start of the ``step``-long slot (an hour, a day: slots counted from the Unix
    epoch, UTC) that holds the aware ``moment``."""
    return moment - (moment - _EPOCH) % step


def bucket_start(moment: datetime, bucket: str) -> datetime:
    """The start (UTC) of the ``hour`` / ``day`` / ``week`` (ISO: Monday) / ``month`` holding
    ``moment``."""
    moment = moment.astimezone(UTC)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket == "day":
        return day
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown bucket {bucket!r}")


def as_utc(value: datetime) -> datetime:
    """``value`` converted to UTC; ``ValueError`` for a naive datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime {value.isoformat()} has no timezone; spendgate stores UTC")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored and returned in UTC on every engine."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = as_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JSONText(TypeDecorator[Any]):
    """A JSON value kept as compact text with sorted keys."""

    impl = Text
    cache_ok = True

    def __init__(self) -> None:
        super().__init__()
        # One encoder, built once: json.dumps with options builds a new one on every call.
        self._encode = json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self._encode(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


class Picodollars(TypeDecorator[Decimal]):
    """``Decimal`` USD stored exactly as a ``BIGINT`` of picodollars."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else to_pusd(value)

    def process_result_value(self, value: int | Decimal | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_pusd(value)
