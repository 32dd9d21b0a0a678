"""Logs: one JSON object per line (or plain text), each carrying the request id it belongs to.

The request id lives in a context variable: the runtime path binds its ``gateway_request_id``
with ``bind_request_id`` when a call starts, the ``RequestId`` middleware binds one for every
other route, and every log line emitted while that request runs names it. Each ASGI request runs
in its own task, so the binding never leaks from one request to another.

The hot path writes no log line per request (one costs ~50-90 µs): warnings and errors are
logged when they happen, and ``spendgate.gateway.metrics.Summary`` writes one line a minute.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOGGER = "spendgate"
REQUEST_ID_HEADER = "x-spendgate-request-id"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
MAX_INCOMING_ID = 128

_request_id: ContextVar[str | None] = ContextVar("spendgate_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    {
        *logging.makeLogRecord({}).__dict__,
        "message",
        "asctime",
        "request_id",
        "taskName",
    }
)


def bind_request_id(request_id: str | None) -> None:
    """Name the request the current task serves in every log line it emits from now on."""
    _request_id.set(request_id)


class RequestIdFilter(logging.Filter):
    """Copies the bound request id onto each record (as ``record.request_id``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, then extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or _request_id.get(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                doc[name] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(log_format: str = "json", level: int = logging.INFO) -> logging.Handler:
    """Send the ``spendgate`` loggers to stderr as ``json`` or ``text``. Idempotent: a second
    call replaces the handler the first one installed."""
    logger = logging.getLogger(LOGGER)
    for old in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(old)
    handler = _StderrHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else _text_formatter())
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return handler


def _text_formatter() -> logging.Formatter:
    formatter = logging.Formatter(TEXT_FORMAT, "%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime
    return formatter


def _utc(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class RequestId:
    """Middleware: binds a request id for every non-runtime request and returns it in
    ``X-Spendgate-Request-Id``. A sane incoming ``X-Request-Id`` is kept, else one is made."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming(scope) or uuid.uuid4().hex
        bind_request_id(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            ok = 0 < len(text) <= MAX_INCOMING_ID and text.isprintable() and " " not in text
            return text if ok and text.isascii() else None
    return None
