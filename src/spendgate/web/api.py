"""The analytics REST API: ``/api/v1/spend``, ``/api/v1/models``, ``/api/v1/export`` (joining
the gateway's admin mount, so the admin token guards them) and the OpenAPI document
(``/api/openapi.json``) with its HTML rendering (``/api/docs``), which need no token.

Bad input is a 400 ``{"error": {"code": "bad_request", "message": ...}}`` naming the parameter.
Queries run in worker threads; exports stream (CSV, JSON) or are built in a temporary file that
is removed once sent (Parquet).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Route

from spendgate.analytics import DIMENSIONS, SpendQuery, answer, answer_json, models
from spendgate.analytics import export as exports
from spendgate.analytics.periods import time_range
from spendgate.errors import ConfigError
from spendgate.gateway.admin import api_handler
from spendgate.store.db import Store
from spendgate.store.schema import FILTERABLE
from spendgate.web.openapi import docs_html, openapi_document

SPEND_PARAMS = ("since", "until", "group_by", "bucket", "order", "limit", "sessions", "latency")
RANGE_PARAMS = ("since", "until")
EXPORT_PARAMS = ("format", "since", "until")
FLAGS = {"sessions": "false", "latency": "true"}  # boolean parameters and their defaults


def single_values(
    params: Iterable[tuple[str, str]], allowed: Iterable[str], filters: Iterable[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Split query parameters into (options, filters); ``ConfigError`` for a repeated or
    unknown parameter, naming what is accepted."""
    options_allowed, filters_allowed = set(allowed), set(filters)
    options: dict[str, str] = {}
    chosen: dict[str, str] = {}
    for name, value in params:
        if name in options or name in chosen:
            raise ConfigError(f"query parameter {name} is given more than once")
        if name in options_allowed:
            options[name] = value
        elif name in filters_allowed:
            chosen[name] = value
        else:
            raise ConfigError(
                f"unknown query parameter {name!r}; use {', '.join(sorted(options_allowed))} "
                f"or a filter: {', '.join(sorted(filters_allowed))}"
            )
    return options, chosen


def spend_query(params: Iterable[tuple[str, str]], now: datetime) -> SpendQuery:
    """The ``SpendQuery`` that ``GET /api/v1/spend``'s parameters ask for."""
    options, filters = single_values(params, SPEND_PARAMS, DIMENSIONS)
    since, until = time_range(options.get("since"), options.get("until"), now)
    limit = options.get("limit")
    if limit is not None and not (limit.isdigit() and len(limit) <= 9):
        raise ConfigError(f"limit must be a whole number, not {limit!r}")
    flags = {name: options.get(name, default) for name, default in FLAGS.items()}
    for name, value in flags.items():
        if value not in ("true", "false"):
            raise ConfigError(f"{name} must be true or false, not {value!r}")
    return SpendQuery.of(
        since,
        until,
        group_by=options.get("group_by", ""),
        filters=filters,
        bucket=options.get("bucket") or None,
        order=options.get("order") or "-cost",
        limit=int(limit) if limit is not None else None,
        sessions=flags["sessions"] == "true",
        latency=flags["latency"] == "true",
    )


def spend_body(store: Store, query: SpendQuery) -> bytes:
    """``GET /api/v1/spend``'s JSON: the query echoed, ``count`` and ``rows`` (made from the
    answer's columns, ``analytics.answer.answer_json``: no Python object per row)."""
    table = answer(store, query)
    head = {
        "since": _iso(query.since),
        "until": _iso(query.until),
        "group_by": list(query.group_by),
        "bucket": query.bucket,
        "order": query.order,
        "count": table.num_rows,
    }
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
    return f'{text[:-1]},"rows":{answer_json(table, query.group_by)}}}'.encode()


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def api_routes(store: Store, *, clock: Callable[[], datetime]) -> list[BaseRoute]:
    """Routes for the admin mount (``/api/v1``): spend, models, export."""

    async def get_spend(request: Request) -> Response:
        query = spend_query(request.query_params.multi_items(), clock())
        body = await asyncio.to_thread(spend_body, store, query)
        return Response(body, media_type="application/json")

    async def get_models(request: Request) -> Response:
        options, filters = single_values(
            request.query_params.multi_items(), RANGE_PARAMS, DIMENSIONS
        )
        since, until = time_range(options.get("since"), options.get("until"), clock())
        SpendQuery.of(since, until, filters=filters)  # validates the filters
        found = await asyncio.to_thread(models, store, since, until, filters)
        return JSONResponse(
            {"since": _iso(since), "until": _iso(until), "models": [m.to_dict() for m in found]}
        )

    async def get_export(request: Request) -> Response:
        options, filters = single_values(
            request.query_params.multi_items(), EXPORT_PARAMS, FILTERABLE
        )
        fmt = options.get("format", "csv")
        if fmt not in exports.FORMATS:
            raise ConfigError(f"format must be one of {', '.join(exports.FORMATS)}, not {fmt!r}")
        since, until = time_range(options.get("since"), options.get("until"), clock())
        name = f"spendgate-events-{since:%Y%m%dT%H%M}-{until:%Y%m%dT%H%M}.{fmt}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        filters = exports.event_filters(filters)
        chunks = store.iter_events(since=since, until=until, filters=filters)
        if fmt == "parquet":
            path = await asyncio.to_thread(_parquet_file, chunks)
            return FileResponse(
                path,
                media_type=exports.MEDIA_TYPES[fmt],
                headers=headers,
                background=BackgroundTask(os.unlink, path),
            )
        text = exports.csv_text(chunks) if fmt == "csv" else exports.json_text(chunks)
        return StreamingResponse(
            (piece.encode() for piece in text), media_type=exports.MEDIA_TYPES[fmt], headers=headers
        )

    return [
        Route("/spend", api_handler(get_spend), methods=["GET"]),
        Route("/models", api_handler(get_models), methods=["GET"]),
        Route("/export", api_handler(get_export), methods=["GET"]),
    ]


def _parquet_file(chunks: Iterable[list[Any]]) -> Path:
    handle, name = tempfile.mkstemp(prefix="spendgate-export-", suffix=".parquet")
    os.close(handle)
    try:
        exports.write_parquet(chunks, Path(name))
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def docs_routes(document: Mapping[str, Any] | None = None) -> list[BaseRoute]:
    """``/api/openapi.json`` and ``/api/docs`` (public: they describe, they hold no data)."""
    doc = dict(document or openapi_document())
    page = docs_html(doc)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(doc)

    async def docs(request: Request) -> Response:
        return HTMLResponse(page)

    return [
        Route("/api/openapi.json", openapi_json, methods=["GET"]),
        Route("/api/docs", docs, methods=["GET"]),
    ]
