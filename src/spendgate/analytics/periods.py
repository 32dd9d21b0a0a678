"""Time ranges as people write them: ``7d``, ``24h``, ``2025-06-01``, ``2025-06-01T12:00Z``.

Pure: ``now`` is passed in. ``ConfigError`` says what is wrong with a value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from spendgate.errors import ConfigError

DEFAULT_SPAN = timedelta(days=7)
_DURATION = re.compile(r"(\d{1,6})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
EXAMPLES = "7d, 24h, 30m, 2w, 2025-06-01 or 2025-06-01T12:00:00Z"


def parse_moment(text: str, now: datetime, name: str) -> datetime:
    """A time: a duration back from ``now`` (``7d``, ``24h``, ``30m``, ``2w``), ``now``, a date
    (midnight UTC) or an ISO-8601 time with a timezone."""
    value = text.strip()
    match = _DURATION.fullmatch(value)
    try:
        if match:
            return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
        if value == "now":
            return now
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            if len(value) > len("2025-06-01"):
                raise ConfigError(f"{name} {text!r} has no timezone: add Z (UTC) or an offset")
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ConfigError(f"{name} must be a time such as {EXAMPLES}; got {text!r}") from None


def time_range(
    since: str | None, until: str | None, now: datetime, *, span: timedelta = DEFAULT_SPAN
) -> tuple[datetime, datetime]:
    """``[since, until)``: ``until`` defaults to ``now``, ``since`` to ``span`` before ``until``."""
    end = parse_moment(until, now, "until") if until else now
    start = parse_moment(since, now, "since") if since else end - span
    if start >= end:
        raise ConfigError(
            f"since ({start:%Y-%m-%dT%H:%M:%SZ}) must be earlier than until "
            f"({end:%Y-%m-%dT%H:%M:%SZ})"
        )
    return start, end
