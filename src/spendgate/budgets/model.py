"""What a budget is: a scope, a metric, a window, a limit and an action (pure: no I/O, no clock).

    scope      field=value pairs that must all match a call; a value ending in ``*`` is a
               prefix. Fields: the attribution fields (department, project, agent, user,
               application, environment, cost_center, session, workflow), ``key``, ``model``
               (matches the requested id, the id sent to AWS or the catalog key) and ``provider``.
               An empty scope matches every call.
    metric     cost_usd | input_tokens | output_tokens | total_tokens | requests
    window     rolling ``minute`` | ``hour`` | ``day`` (the last 60 s / 60 min / 24 h), or
               calendar ``calendar_day`` | ``calendar_week`` (Monday) | ``calendar_month``
               in ``timezone`` (an IANA name; UTC by default)
    action     block (deny what would cross the limit) | alert (never blocks) |
               downgrade (route to ``downgrade_to`` instead of crossing the limit)
    thresholds percentages of the limit at which an alert fires (default 50, 80, 100)

A *rate limit* is a token or request budget over a window of an hour or less: crossing it is a
throttle (``ThrottlingException`` with ``Retry-After``) rather than an exhausted budget.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from spendgate.errors import ConfigError
from spendgate.events import ATTRIBUTION_FIELDS

# scope field as written -> the call attribute it matches ("model" matches three of them)
SCOPE_FIELDS: dict[str, str] = {
    **{name: name for name in ATTRIBUTION_FIELDS},
    "user": "user_id",
    "session": "session_id",
    "workflow": "workflow_id",
    "key": "key_id",
    "key_id": "key_id",
    "model": "model",
    "provider": "provider",
}
MAX_SCOPE_VALUE = 256
E = TypeVar("E", bound=StrEnum)
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_VALUE = re.compile(r"[^\x00-\x1f\x7f]+")


class Metric(StrEnum):
    COST_USD = "cost_usd"
    INPUT_TOKENS = "input_tokens"
    OUTPUT_TOKENS = "output_tokens"
    TOTAL_TOKENS = "total_tokens"
    REQUESTS = "requests"


class Window(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    CALENDAR_DAY = "calendar_day"
    CALENDAR_WEEK = "calendar_week"
    CALENDAR_MONTH = "calendar_month"

    @property
    def rolling(self) -> bool:
        return self in (Window.MINUTE, Window.HOUR, Window.DAY)


class Action(StrEnum):
    BLOCK = "block"
    ALERT = "alert"
    DOWNGRADE = "downgrade"


ROLLING_SECONDS = {Window.MINUTE: 60, Window.HOUR: 3600, Window.DAY: 86400}
DEFAULT_THRESHOLDS = (50, 80, 100)


@dataclass(frozen=True, slots=True)
class Budget:
    id: str
    name: str
    metric: Metric
    window: Window
    limit: Decimal
    scope: Mapping[str, str] = field(default_factory=dict)  # canonical field -> value or prefix*
    action: Action = Action.BLOCK
    downgrade_to: str | None = None
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    timezone: str = "UTC"
    enabled: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        check(_ID.fullmatch(self.id) is not None, f"budget id {self.id!r} is not valid")
        check(0 < len(self.name) <= 200, "a budget name must have 1 to 200 characters")
        check(self.limit > 0, "a budget limit must be greater than zero")
        check(
            (self.action is Action.DOWNGRADE) == bool(self.downgrade_to),
            "downgrade_to goes with action downgrade, and only with it",
        )
        check(
            all(0 < t <= 1000 for t in self.thresholds),
            "alert thresholds are percentages between 1 and 1000",
        )
        check(
            self.metric is Metric.COST_USD or self.limit == self.limit.to_integral_value(),
            "a token or request limit must be a whole number",
        )
        zone(self.timezone)

    @property
    def is_rate_limit(self) -> bool:
        """Tokens or requests over at most an hour: crossing it is a throttle."""
        return self.metric is not Metric.COST_USD and self.window in (Window.MINUTE, Window.HOUR)

    @property
    def blocks(self) -> bool:
        return self.enabled and self.action is not Action.ALERT

    def describe_scope(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.scope.items())) or "every call"


def check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r} (use an IANA name such as UTC)") from None


def new_budget_id() -> str:
    return "bgt_" + secrets.token_hex(6)


def parse_scope(spec: str | Mapping[str, Any] | None) -> dict[str, str]:
    """``"department=sales,model=anthropic.*"`` (or a mapping) -> canonical scope."""
    if spec is None:
        return {}
    check(
        isinstance(spec, str | Mapping),
        'a scope is "field=value,..." or a table of field = value',
    )
    items: list[tuple[str, Any]]
    if isinstance(spec, str):
        items = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, value = part.partition("=")
            check(bool(sep), f"scope part {part!r} must look like field=value")
            items.append((name.strip(), value.strip()))
    else:
        items = list(spec.items())
    scope: dict[str, str] = {}
    for name, value in items:
        canonical = SCOPE_FIELDS.get(name)
        check(
            canonical is not None,
            f"unknown scope field {name!r}; use one of {', '.join(sorted(SCOPE_FIELDS))}",
        )
        assert canonical is not None
        check(isinstance(value, str) and bool(value), f"scope field {name} needs a value")
        check(
            len(value) <= MAX_SCOPE_VALUE and _VALUE.fullmatch(value) is not None,
            f"scope value for {name} must be printable and at most {MAX_SCOPE_VALUE} characters",
        )
        check(canonical not in scope, f"scope field {name} is given twice")
        scope[canonical] = value
    return scope


def parse_limit(value: Any) -> Decimal:
    try:
        limit = Decimal(str(value).strip().removeprefix("$"))
    except InvalidOperation:
        raise ConfigError(f"budget limit {value!r} is not a number") from None
    check(limit.is_finite() and limit > 0, "a budget limit must be a positive number")
    return limit


def parse_thresholds(value: Any) -> tuple[int, ...]:
    if value is None:
        return DEFAULT_THRESHOLDS
    check(
        isinstance(value, str | list | tuple),
        'alert thresholds are "50,80,100" or a list of percentages',
    )
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        out = tuple(sorted({int(str(p).strip().removesuffix("%")) for p in parts if str(p)}))
    except ValueError:
        raise ConfigError(f"alert thresholds {value!r} must be whole percentages") from None
    return out


def enum_value(kind: type[E], value: Any, what: str) -> E:
    try:
        return kind(str(value))
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise ConfigError(f"{what} {value!r} is not one of: {choices}") from None


def budget_from_dict(data: Mapping[str, Any], *, budget_id: str | None = None) -> Budget:
    """A budget from its JSON/TOML form (the admin API, the config file, the CLI)."""
    known = {
        "id",
        "name",
        "scope",
        "metric",
        "window",
        "limit",
        "action",
        "downgrade_to",
        "thresholds",
        "timezone",
        "enabled",
    }
    unknown = sorted(set(data) - known)
    check(not unknown, f"unknown budget field(s): {', '.join(unknown)}")
    for required in ("name", "metric", "window", "limit"):
        check(data.get(required) not in (None, ""), f"a budget needs a {required}")
    enabled = data.get("enabled", True)
    check(isinstance(enabled, bool), "enabled must be true or false")
    name = data["name"]
    check(isinstance(name, str) and bool(name.strip()), "a budget name must be a non-blank string")
    downgrade_to = data.get("downgrade_to") or None
    check(downgrade_to is None or isinstance(downgrade_to, str), "downgrade_to must be a model id")
    return Budget(
        id=budget_id or str(data.get("id") or new_budget_id()),
        name=name,
        scope=parse_scope(data.get("scope")),
        metric=enum_value(Metric, data["metric"], "metric"),
        window=enum_value(Window, data["window"], "window"),
        limit=parse_limit(data["limit"]),
        action=enum_value(Action, data.get("action", "block"), "action"),
        downgrade_to=downgrade_to,
        thresholds=parse_thresholds(data.get("thresholds")),
        timezone=str(data.get("timezone") or "UTC"),
        enabled=enabled,
    )


def budget_to_dict(budget: Budget) -> dict[str, Any]:
    """The JSON form: money and limits as decimal strings."""
    return {
        "id": budget.id,
        "name": budget.name,
        "scope": dict(budget.scope),
        "metric": budget.metric.value,
        "window": budget.window.value,
        "limit": str(budget.limit),
        "action": budget.action.value,
        "downgrade_to": budget.downgrade_to,
        "thresholds": list(budget.thresholds),
        "timezone": budget.timezone,
        "enabled": budget.enabled,
        "rate_limit": budget.is_rate_limit,
    }
