"""The admin API (``/api/v1``, JSON) and the key operations ``spendgate keys`` shares with it.

    GET    /api/v1/events               newest first; since, until, limit, field filters
    GET    /api/v1/keys                 every key (never the key itself)
    POST   /api/v1/keys                 create; the answer holds the key, shown this once
    GET    /api/v1/keys/{id}            one key
    POST   /api/v1/keys/{id}/rotate     a new secret for the same id; the old one stops working
    DELETE /api/v1/keys/{id}            revoke

Behind ``Authorization: Bearer <SPENDGATE_ADMIN_TOKEN>`` (``middleware.AdminAuth``). Store calls
run in worker threads. Bad input is a ``ConfigError`` here and a 400 on the wire; money is a
decimal string, times are ISO-8601 UTC with ``Z``. See docs/api.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from spendgate.bedrock.metadata import metadata_problems
from spendgate.errors import ConfigError, CounterUnavailable
from spendgate.events import Event
from spendgate.gateway.keys import hash_key, key_prefix, new_key, new_key_id
from spendgate.gateway.middleware import AdminAuth, BodyLimit, JsonErrors, json_error
from spendgate.pricing import decimal_text
from spendgate.store.db import MAX_LIMIT, Store
from spendgate.store.keys import DEFAULT_FIELDS, KeyRecord
from spendgate.store.schema import FILTERABLE

log = logging.getLogger("spendgate.gateway.admin")

MAX_BODY_BYTES = 64 * 1024
DEFAULT_LIMIT = 100
MAX_NAME = 200
MAX_MODELS = 100
KEY_FIELDS = ("name", "expires_at", "allowed_models", "defaults", "role_arn", "external_id")
_DURATION = re.compile(r"(\d{1,6})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")

# -- values on the wire ---------------------------------------------------------------------------


def iso(moment: datetime | None) -> str | None:
    """``2025-06-01T12:00:00.123456Z`` (UTC), or None."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def money(amount: Decimal | None) -> str | None:
    """A decimal string without exponent or trailing zeros (``"0.00123"``), or None."""
    return None if amount is None else decimal_text(amount)


def parse_time(text: str, name: str) -> datetime:
    """An ISO-8601 time with a timezone (a bare date means midnight UTC); ConfigError if not."""
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{name} must be an ISO-8601 time such as 2025-06-01T12:00:00Z, not {text!r}"
        ) from None
    if moment.tzinfo is None and len(text) > len("2025-06-01"):
        raise ConfigError(f"{name} {text!r} has no timezone: add Z (UTC) or an offset (+02:00)")
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


def parse_expiry(text: str, now: datetime) -> datetime:
    """A future time: ISO-8601, or a duration from ``now`` such as ``90d``, ``12h``, ``30m``."""
    match = _DURATION.fullmatch(text.strip())
    if match:
        moment = now + timedelta(**{_UNITS[match[2]]: int(match[1])})
    else:
        moment = parse_time(text, "expires_at (a time, or a duration such as 90d)")
    if moment <= now:
        raise ConfigError(f"expires_at {text!r} is not in the future")
    return moment


def event_json(event: Event) -> dict[str, Any]:
    doc = event.to_dict()
    for name in ("ts", "ts_end"):
        doc[name] = iso(doc[name])
    doc["cost_usd"] = money(event.cost_usd)
    return doc


def key_json(record: KeyRecord, now: datetime) -> dict[str, Any]:
    """A key as shown to people: never its secret or its hash."""
    revoked = record.revoked_at is not None and record.revoked_at <= now
    status = "revoked" if revoked else "active" if record.active(now) else "expired"
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.key_prefix,
        "status": status,
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at),
        "revoked_at": iso(record.revoked_at),
        "allowed_models": None if record.allowed_models is None else list(record.allowed_models),
        "defaults": dict(record.defaults),
        "role_arn": record.role_arn,
        "external_id": record.external_id,
    }


# -- key operations (the CLI uses these too) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What a new key is allowed and attributed to; build it with ``key_spec``."""

    name: str
    expires_at: datetime | None = None
    allowed_models: tuple[str, ...] | None = None
    defaults: Mapping[str, str] = field(default_factory=dict)
    role_arn: str | None = None
    external_id: str | None = None


def key_spec(doc: Mapping[str, Any], now: datetime) -> KeySpec:
    """Validate a key description (the JSON body of ``POST /keys``); ConfigError if wrong."""
    unknown = sorted(set(doc) - set(KEY_FIELDS))
    if unknown:
        raise ConfigError(f"unknown key field {', '.join(unknown)}; known: {', '.join(KEY_FIELDS)}")
    name = doc.get("name")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_NAME:
        raise ConfigError(f"name is required: a string of 1 to {MAX_NAME} characters")
    expires = _optional_str(doc, "expires_at")
    role_arn, external_id = _optional_str(doc, "role_arn"), _optional_str(doc, "external_id")
    if role_arn is not None and not _ROLE_ARN.fullmatch(role_arn):
        raise ConfigError(
            f"role_arn {role_arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
        )
    if external_id is not None and (role_arn is None or not _EXTERNAL_ID.fullmatch(external_id)):
        raise ConfigError(
            "external_id needs a role_arn, and 2 to 1224 letters, digits or +=,.@:/-_"
        )
    return KeySpec(
        name.strip(),
        None if expires is None else parse_expiry(expires, now),
        _models(doc.get("allowed_models")),
        _defaults(doc.get("defaults")),
        role_arn,
        external_id,
    )


def _optional_str(doc: Mapping[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{name} must be a non-empty string (or left out)")
    return None if value is None else value.strip()


def _models(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not 0 < len(value) <= MAX_MODELS
        or not all(isinstance(m, str) and 0 < len(m.strip()) <= 256 for m in value)
    ):
        raise ConfigError(
            f"allowed_models must be a list of 1 to {MAX_MODELS} model ids or prefixes ending "
            "in * (leave it out to allow every model)"
        )
    return tuple(dict.fromkeys(m.strip() for m in value))


def _defaults(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"defaults must be an object with keys among {', '.join(DEFAULT_FIELDS)}")
    unknown = sorted(str(k) for k in value if k not in DEFAULT_FIELDS)
    if unknown:
        raise ConfigError(
            f"unknown default {', '.join(unknown)}; allowed: {', '.join(DEFAULT_FIELDS)}"
        )
    out = {k: v.strip() for k, v in value.items() if isinstance(v, str) and v.strip()}
    for name in value:
        if name not in out or metadata_problems({"x": out[name]}):
            raise ConfigError(
                f"defaults.{name} must be 1 to 256 letters, digits, spaces or "
                ": _ @ $ # = / + , - . (it is written into Bedrock's requestMetadata)"
            )
    return out


def issue_key(store: Store, spec: KeySpec, now: datetime) -> tuple[KeyRecord, str]:
    """Store a new key (hashed) and return its record and the key, to be shown once."""
    key = new_key()
    record = KeyRecord(
        id=new_key_id(),
        key_hash=hash_key(key),
        key_prefix=key_prefix(key),
        created_at=now,
        **asdict(spec),
    )
    store.create_key(record)
    log.info("API key %s (%s) created", record.id, record.name, extra={"key_id": record.id})
    return record, key


def find_key(store: Store, key_id: str) -> KeyRecord | None:
    return next((r for r in store.list_keys() if r.id == key_id), None)


def rotate_key(store: Store, key_id: str) -> tuple[KeyRecord, str] | None:
    """A new key for ``key_id`` (the old one stops working); None if there is no such key,
    ConfigError if it is revoked."""
    record = find_key(store, key_id)
    if record is None:
        return None
    if record.revoked_at is not None:
        raise ConfigError(f"API key {key_id} is revoked: create a new key instead")
    key = new_key()
    rotated = replace(record, key_hash=hash_key(key), key_prefix=key_prefix(key))
    if not store.replace_key_hash(key_id, rotated.key_hash, rotated.key_prefix):
        return None
    log.info("API key %s rotated", key_id, extra={"key_id": key_id})
    return rotated, key


def revoke_key(store: Store, key_id: str, now: datetime) -> tuple[KeyRecord, bool] | None:
    """(the record, whether this call revoked it); None if there is no such key."""
    changed = store.revoke_key(key_id, now)
    record = find_key(store, key_id)
    if changed:
        log.info("API key %s revoked", key_id, extra={"key_id": key_id})
    return None if record is None else (record, changed)


# -- routes ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventQuery:
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_LIMIT
    filters: dict[str, str] = field(default_factory=dict)


def event_query(params: Iterable[tuple[str, str]]) -> EventQuery:
    """Parse ``GET /events`` query parameters; ConfigError saying what is wrong."""
    values: dict[str, str] = {}
    for name, value in params:
        if name in values:
            raise ConfigError(f"query parameter {name} is given more than once")
        if name not in ("since", "until", "limit", *FILTERABLE):
            raise ConfigError(
                f"unknown query parameter {name!r}; use since, until, limit or a filter: "
                + ", ".join(FILTERABLE)
            )
        values[name] = value
    since = parse_time(values.pop("since"), "since") if "since" in values else None
    until = parse_time(values.pop("until"), "until") if "until" in values else None
    if since and until and since >= until:
        raise ConfigError("since must be earlier than until")
    raw_limit = values.pop("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ConfigError(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {raw_limit!r}")
    empty = sorted(name for name, value in values.items() if not value)
    if empty:
        raise ConfigError(f"filter {', '.join(empty)} needs a value")
    return EventQuery(since, until, int(raw_limit), values)


Handler = Callable[[Request], Awaitable[Response]]


def api_handler(handler: Handler) -> Handler:
    """Turns a ConfigError into a 400, unreachable budget counters into a 503."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ConfigError as err:
            return json_error(400, str(err))
        except CounterUnavailable as err:
            return json_error(503, f"budget counters unavailable: {err}")

    return endpoint


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"the request body is not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ConfigError("the request body must be a JSON object")
    return doc


def admin_routes(
    store: Store,
    *,
    token: str | None,
    clock: Callable[[], datetime],
    keys_changed: Callable[[], object] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    extra_routes: Sequence[BaseRoute] = (),
) -> Mount:
    """``/api/v1``; ``keys_changed`` (called in a thread) reloads the gateway's key ring, so a
    rotated or revoked key stops working at once on this replica. ``extra_routes`` (budgets,
    sentry, analytics) join the same mount, behind the same admin token."""

    async def changed() -> None:
        if keys_changed is not None:
            await asyncio.to_thread(keys_changed)

    def missing(key_id: str) -> Response:
        return json_error(404, f"no API key with id {key_id!r}")

    async def events(request: Request) -> Response:
        query = event_query(request.query_params.multi_items())

        def encoded() -> bytes:
            found = store.list_events(
                since=query.since, until=query.until, filters=query.filters, limit=query.limit
            )
            doc = {"events": [event_json(e) for e in found], "count": len(found)}
            return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

        return Response(await asyncio.to_thread(encoded), media_type="application/json")

    async def list_keys(request: Request) -> Response:
        records, now = await asyncio.to_thread(store.list_keys), clock()
        return JSONResponse({"keys": [key_json(r, now) for r in records]})

    async def get_key(request: Request) -> Response:
        key_id = request.path_params["id"]
        record = await asyncio.to_thread(find_key, store, key_id)
        return missing(key_id) if record is None else JSONResponse(key_json(record, clock()))

    async def create(request: Request) -> Response:
        now = clock()
        spec = key_spec(await json_body(request), now)
        record, key = await asyncio.to_thread(issue_key, store, spec, now)
        await changed()
        return JSONResponse({**key_json(record, now), "key": key}, status_code=201)

    async def rotate(request: Request) -> Response:
        key_id = request.path_params["id"]
        try:
            rotated = await asyncio.to_thread(rotate_key, store, key_id)
        except ConfigError as err:
            return json_error(409, str(err))
        if rotated is None:
            return missing(key_id)
        await changed()
        return JSONResponse({**key_json(rotated[0], clock()), "key": rotated[1]})

    async def revoke(request: Request) -> Response:
        key_id = request.path_params["id"]
        result = await asyncio.to_thread(revoke_key, store, key_id, clock())
        if result is None:
            return missing(key_id)
        await changed()
        return JSONResponse(key_json(result[0], clock()))

    routes = [
        Route("/events", api_handler(events), methods=["GET"]),
        Route("/keys", api_handler(list_keys), methods=["GET"]),
        Route("/keys", api_handler(create), methods=["POST"]),
        Route("/keys/{id}", api_handler(get_key), methods=["GET"]),
        Route("/keys/{id}", api_handler(revoke), methods=["DELETE"]),
        Route("/keys/{id}/rotate", api_handler(rotate), methods=["POST"]),
        *extra_routes,
    ]
    middleware = [
        Middleware(JsonErrors),
        Middleware(AdminAuth, token=token),
        Middleware(BodyLimit, max_bytes=max_body_bytes),
    ]
    return Mount("/api/v1", routes=routes, middleware=middleware)
