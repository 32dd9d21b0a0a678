"""JSON logs with request ids: the formatter, the context binding and the middleware."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from spendgate.bedrock.sigv4 import Credentials
from spendgate.gateway import logs
from spendgate.gateway.app import create_app
from spendgate.settings import GatewaySettings
from spendgate.sim.account import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY
from spendgate.store import open_store

from helpers import serve

LOGGER = "spendgate.tests.logs"


@pytest.fixture
def lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Everything logged to ``LOGGER`` as parsed JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RequestIdFilter())
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logs.bind_request_id(None)


def test_a_line_is_one_json_object_with_the_usual_fields_and_extras(
    lines: Callable[[], list[dict[str, Any]]],
) -> None:
    log = logging.getLogger(LOGGER)
    logs.bind_request_id("req-1")
    log.warning("queue is %d%% full", 90, extra={"queued": 9000, "path": Path("/x")})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, second = lines()
    assert first["message"] == "queue is 90% full"
    assert first["level"] == "WARNING" and first["logger"] == LOGGER
    assert first["request_id"] == "req-1"
    assert first["queued"] == 9000 and first["path"] == "/x"
    assert first["time"].endswith("Z") and len(first["time"]) == len("2025-06-01T12:00:00.000Z")
    assert not {"args", "msg", "levelno", "pathname"} & set(first)
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def test_request_ids_stay_with_their_own_task(lines: Callable[[], list[dict[str, Any]]]) -> None:
    log = logging.getLogger(LOGGER)

    async def handle(request_id: str) -> None:
        logs.bind_request_id(request_id)
        await asyncio.sleep(0.01)
        log.info("done %s", request_id)

    async def main() -> None:
        await asyncio.gather(handle("a"), handle("b"), handle("c"))
        log.info("outside")

    asyncio.run(main())
    seen = {line["message"]: line["request_id"] for line in lines()}
    assert seen == {"done a": "a", "done b": "b", "done c": "c", "outside": None}


def test_configure_installs_one_handler_in_either_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("spendgate")
    try:
        logs.configure("json")
        logs.configure("json")
        assert sum(isinstance(h, logs._StderrHandler) for h in logger.handlers) == 1
        logs.bind_request_id("abc")
        logging.getLogger("spendgate.x").info("hello", extra={"n": 1})
        line = json.loads(capsys.readouterr().err)
        assert (line["message"], line["request_id"], line["n"]) == ("hello", "abc", 1)
        logs.configure("text")
        logging.getLogger("spendgate.x").warning("plain")
        text = capsys.readouterr().err
        assert text.endswith("Z WARNING spendgate.x [abc] plain\n")
    finally:
        logs.bind_request_id(None)
        for handler in [h for h in logger.handlers if isinstance(h, logs._StderrHandler)]:
            logger.removeHandler(handler)


def test_the_middleware_names_each_request_in_its_logs_and_its_response(
    lines: Callable[[], list[dict[str, Any]]],
) -> None:
    async def hello(request: Request) -> PlainTextResponse:
        logging.getLogger(LOGGER).info("handling")
        return PlainTextResponse("hi")

    app = Starlette(routes=[Route("/", hello)], middleware=[Middleware(logs.RequestId)])
    with serve(app) as url:
        made = requests.get(url)
        kept = requests.get(url, headers={"X-Request-Id": "trace-42"})
        refused = requests.get(url, headers={"X-Request-Id": "has spaces"})
        huge = requests.get(url, headers={"X-Request-Id": "x" * 200})
    ids = [r.headers["x-spendgate-request-id"] for r in (made, kept, refused, huge)]
    assert len(ids[0]) == 32 and ids[1] == "trace-42"
    assert ids[2] != "has spaces" and len(ids[2]) == 32 and len(ids[3]) == 32
    assert [line["request_id"] for line in lines()] == ids
    assert len(set(ids)) == 4


def test_the_gateway_logs_admin_actions_with_the_request_id_and_no_line_per_call(
    sim_factory: Callable[..., str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = GatewaySettings(
        db=f"sqlite:///{tmp_path}/gw.db",
        bedrock_endpoint=sim_factory(),
        admin_token="t0ken",
        allow_unauthenticated=True,
        journal_path=tmp_path / "journal.jsonl",
    )
    app = create_app(
        settings,
        store=open_store(settings.db),
        credentials=lambda: Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY),
    )
    body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    try:
        with serve(app) as url:
            capsys.readouterr()
            made = requests.post(
                f"{url}/api/v1/keys", json={"name": "x"}, headers={"Authorization": "Bearer t0ken"}
            )
            for _ in range(5):
                r = requests.post(f"{url}/model/amazon.nova-lite-v1:0/converse", json=body)
                assert r.status_code == 200
            during = capsys.readouterr().err.splitlines()
    finally:
        logger = logging.getLogger("spendgate")
        for handler in [h for h in logger.handlers if isinstance(h, logs._StderrHandler)]:
            logger.removeHandler(handler)
    (line,) = [json.loads(text) for text in during]  # the key; nothing for the five calls
    assert line["message"].startswith("API key key_") and line["key_id"] == made.json()["id"]
    assert line["request_id"] == made.headers["x-spendgate-request-id"]
    assert made.json()["key"] not in "\n".join(during)
