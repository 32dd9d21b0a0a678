"""Tiny ASGI middleware for the admin API: JSON errors, bearer-token auth, body-size limit.

Every admin error is ``{"error": {"code": "...", "message": "..."}}`` with its HTTP status;
``json_error`` builds it, and ``JsonErrors`` turns Starlette's own 404/405 into the same shape.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
}
NO_TOKEN = (
    "the admin API is disabled: set SPENDGATE_ADMIN_TOKEN (or admin_token in the [gateway] "
    "table of the config file) and restart the gateway"
)


def json_error(
    status: int, message: str, *, code: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code or CODES.get(status, "error"), "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


class JsonErrors:
    """Starlette's 404 (no such route) and 405 (wrong method) as JSON errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except HTTPException as exc:
            message = f"{scope.get('method')} {scope.get('path')}: {exc.detail}"
            await json_error(exc.status_code, message, headers=exc.headers)(scope, receive, send)


class AdminAuth:
    """Requires ``Authorization: Bearer <admin token>`` (compared in constant time). Without a
    configured token every request gets 403 saying how to set one."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self._token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self._problem(scope)
            if problem is not None:
                await problem(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(self, scope: Scope) -> JSONResponse | None:
        if self._token is None:
            return json_error(403, NO_TOKEN)
        presented = _bearer(scope)
        if presented is None:
            return json_error(
                401,
                "send the admin token as 'Authorization: Bearer <SPENDGATE_ADMIN_TOKEN>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(presented, self._token):
            return json_error(
                401, "the admin token is wrong", headers={"WWW-Authenticate": "Bearer"}
            )
        return None


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return bytes(value[7:].strip())
    return None


class _TooLarge(Exception):
    """Raised through the app by ``BodyLimit``'s receive once the body passes the limit."""


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, whether declared or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(declared, scope, receive, send)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watch)
        except _TooLarge:
            if started:
                raise
            await self._refuse(seen, scope, receive, send)

    async def _refuse(self, size: int, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body ({size} bytes or more) exceeds the limit of {self.max_bytes}"
        await json_error(413, message)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text: Any = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None
