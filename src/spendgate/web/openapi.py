"""The OpenAPI 3.1 document of the analytics API, and a plain HTML page rendering it.

``openapi_document()`` is built from the same constants the handlers check (dimensions, buckets,
orders, export formats), so the document cannot drift from what the API accepts. The docs page is
server-rendered HTML with no script: it works offline.
"""

from __future__ import annotations

import html
from typing import Any

from spendgate import __version__
from spendgate.analytics import BUCKETS, DIMENSIONS, ORDERS
from spendgate.analytics.export import FORMATS, MEDIA_TYPES
from spendgate.analytics.query import MAX_ROWS
from spendgate.store.db import MAX_LIMIT
from spendgate.store.schema import FILTERABLE

MONEY = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "USD, decimal string"}
MONEY_OR_NULL = {"anyOf": [MONEY, {"type": "null"}]}
COUNT = {"type": "integer", "minimum": 0}
TIME_TEXT = (
    "A duration back from now (`7d`, `24h`, `30m`, `2w`), `now`, a date (midnight UTC) "
    "or an ISO-8601 time with a timezone"
)


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _range() -> list[dict[str, Any]]:
    return [
        _query("since", f"Start of the range (inclusive). {TIME_TEXT}. Default: 7 days ago."),
        _query("until", f"End of the range (exclusive). {TIME_TEXT}. Default: now."),
    ]


def _filters(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        _query(name, f"Only events whose {name} equals this value (empty: events without one).")
        for name in names
    ]


def _error() -> dict[str, Any]:
    return {
        "description": "Bad input, missing or wrong admin token",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _errors() -> dict[str, Any]:
    return {"400": _error(), "401": _error(), "403": _error()}


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


def _spend_path() -> dict[str, Any]:
    parameters = [
        *_range(),
        _query("group_by", f"Comma-separated fields to group by: {', '.join(DIMENSIONS)}."),
        _query("bucket", "Time bucket (UTC; weeks start on Monday).", {"enum": list(BUCKETS)}),
        _query(
            "order",
            "Sort by a measure or group field; prefix '-' for descending. Default: -cost.",
        ),
        _query("limit", f"At most this many rows (1 to {MAX_ROWS}).", {"type": "string"}),
        _query(
            "sessions",
            "Also count distinct sessions and workflows (cost per session and per workflow).",
            {"enum": ["true", "false"]},
        ),
        _query(
            "latency",
            "false: leave out latency p50/p95 (null), reading about half the columns: faster.",
            {"enum": ["true", "false"]},
        ),
        *_filters(DIMENSIONS),
    ]
    return {
        "get": {
            "summary": "Spend grouped by any fields, over time",
            "description": (
                "Cost, requests, tokens, errors, error cost, latency p50/p95 (histogram "
                "estimate), $ per 1K tokens, $ per request, cache-hit rate and unpriced counts, "
                "per group (and bucket). Money is a decimal string. Answered from the rollups "
                "when the fields allow it."
            ),
            "operationId": "getSpend",
            "parameters": parameters,
            "responses": {"200": _json("SpendAnswer", "The rows"), **_errors()},
        }
    }


def _models_path() -> dict[str, Any]:
    return {
        "get": {
            "summary": "Models seen, with spend, unit economics and catalog prices",
            "operationId": "getModels",
            "parameters": [*_range(), *_filters(DIMENSIONS)],
            "responses": {"200": _json("ModelsAnswer", "One entry per model"), **_errors()},
        }
    }


def _events_path() -> dict[str, Any]:
    return {
        "get": {
            "summary": "Stored events, newest first",
            "operationId": "getEvents",
            "parameters": [
                _query("since", "ISO-8601 time with a timezone (inclusive)"),
                _query("until", "ISO-8601 time with a timezone (exclusive)"),
                _query("limit", f"1 to {MAX_LIMIT} (default 100)"),
                *_filters(FILTERABLE),
            ],
            "responses": {"200": _json("EventsAnswer", "The events"), **_errors()},
        }
    }


def _export_path() -> dict[str, Any]:
    content = {
        MEDIA_TYPES["csv"].split(";")[0]: {"schema": {"type": "string"}},
        MEDIA_TYPES["json"]: {"schema": {"type": "array", "items": {"type": "object"}}},
        MEDIA_TYPES["parquet"]: {"schema": {"type": "string", "format": "binary"}},
    }
    return {
        "get": {
            "summary": "Export events as CSV, JSON or Parquet",
            "description": "Every event field; oldest first. Streams any number of events.",
            "operationId": "exportEvents",
            "parameters": [
                _query("format", "File format (default csv).", {"enum": list(FORMATS)}),
                *_range(),
                *_filters(FILTERABLE),
            ],
            "responses": {"200": {"description": "The file", "content": content}, **_errors()},
        }
    }


def _row_schema() -> dict[str, Any]:
    counts = (
        *("requests", "errors", "unpriced", "input_tokens", "output_tokens"),
        *("cache_read_tokens", "cache_write_tokens", "total_tokens"),
    )
    properties: dict[str, Any] = {name: COUNT for name in counts}
    for name in ("cost", "error_cost"):
        properties[name] = MONEY
    for name in ("cost_per_1k_tokens", "cost_per_request", "cache_hit_rate"):
        properties[name] = MONEY_OR_NULL
    for name in ("latency_p50_ms", "latency_p95_ms"):
        properties[name] = {"type": ["number", "null"]}
    properties["bucket"] = {"type": "string", "format": "date-time"}
    properties["sessions"] = COUNT
    properties["workflows"] = COUNT
    for name in ("session_cost", "workflow_cost", "cost_per_session", "cost_per_workflow"):
        properties[name] = MONEY_OR_NULL
    return {
        "type": "object",
        "description": "Group fields (string or null) plus the measures",
        "required": [*counts, "cost", "error_cost"],
        "properties": properties,
        "additionalProperties": {"type": ["string", "null"]},
    }


def _schemas() -> dict[str, Any]:
    time = {"type": "string", "format": "date-time"}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
        "SpendRow": _row_schema(),
        "SpendAnswer": {
            "type": "object",
            "required": ["since", "until", "group_by", "bucket", "rows", "count"],
            "properties": {
                "since": time,
                "until": time,
                "group_by": {"type": "array", "items": {"enum": list(DIMENSIONS)}},
                "bucket": {"enum": [*BUCKETS, None]},
                "order": {"type": "string"},
                "rows": {"type": "array", "items": {"$ref": "#/components/schemas/SpendRow"}},
                "count": COUNT,
            },
        },
        "ModelsAnswer": {
            "type": "object",
            "required": ["since", "until", "models"],
            "properties": {
                "since": time,
                "until": time,
                "models": {"type": "array", "items": {"type": "object"}},
            },
        },
        "EventsAnswer": {
            "type": "object",
            "required": ["events", "count"],
            "properties": {
                "events": {"type": "array", "items": {"type": "object"}},
                "count": COUNT,
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``/api/v1`` analytics routes."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "spendgate analytics API",
            "version": __version__,
            "description": (
                "Spend, models, events and exports. Every route needs the admin token: "
                "`Authorization: Bearer <SPENDGATE_ADMIN_TOKEN>`. Errors are "
                '`{"error": {"code", "message"}}`. Sortable measures: ' + ", ".join(ORDERS) + "."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"adminToken": []}],
        "paths": {
            "/api/v1/spend": _spend_path(),
            "/api/v1/models": _models_path(),
            "/api/v1/events": _events_path(),
            "/api/v1/export": _export_path(),
        },
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
    }


def docs_html(document: dict[str, Any]) -> str:
    """The document as a readable, script-free HTML page."""
    e = html.escape
    info = document["info"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(info['title'])}</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}code,td:first-child{font-family:ui-monospace,monospace}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem;"
        "text-align:left;vertical-align:top}h2{margin-top:2.5rem}</style></head><body>",
        f"<h1>{e(info['title'])} <small>{e(info['version'])}</small></h1>",
        f"<p>{e(info['description'])}</p>",
        "<p>Machine-readable: <a href='/api/openapi.json'>/api/openapi.json</a></p>",
    ]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            parts.append(f"<h2><code>{e(method.upper())} {e(path)}</code></h2>")
            parts.append(f"<p><strong>{e(operation['summary'])}</strong></p>")
            if "description" in operation:
                parts.append(f"<p>{e(operation['description'])}</p>")
            parts.append("<table><tr><th>parameter</th><th>description</th><th>values</th></tr>")
            for param in operation.get("parameters", []):
                values = param["schema"].get("enum", [])
                parts.append(
                    f"<tr><td>{e(param['name'])}</td><td>{e(param['description'])}</td>"
                    f"<td>{e(', '.join(map(str, values)))}</td></tr>"
                )
            parts.append("</table><p>Responses: ")
            parts.append(", ".join(e(code) for code in operation["responses"]) + "</p>")
    parts.append("</body></html>")
    return "".join(parts)
