"""The floor: a bare pass-through on the gateway's own stack (uvicorn + our Upstream client), with
no auth, attribution, signing, metering or recording. ``FLOOR_UPSTREAM`` names the upstream."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from spendgate.gateway.upstream import Upstream

TARGET = os.environ.get("FLOOR_UPSTREAM", "http://127.0.0.1:18900")
HOST = urlsplit(TARGET).netloc
_state: dict[str, Upstream] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _state["upstream"] = Upstream()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _state["upstream"].aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    path = scope["raw_path"].decode()
    headers = [("host", HOST), ("content-type", "application/json")]
    response = await _state["upstream"].request("POST", TARGET + path, headers, b"".join(chunks))
    out = [
        (k.lower().encode(), v.encode())
        for k, v in response.headers
        if k.lower() not in ("content-length", "transfer-encoding", "connection")
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": out})
    async for chunk in response.aiter_bytes():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await response.aclose()
    await send({"type": "http.response.body", "body": b""})
