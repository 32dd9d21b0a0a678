"""Faults on the way: the client gets Bedrock's own error shape and the call is still recorded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import EventStreamError

from spendgate.settings import SimSettings

from gateway_env import Env, running
from helpers import TLS, free_port

NOVA = "amazon.nova-lite-v1%3A0"
HELLO = {"messages": [{"role": "user", "content": [{"text": "Forecast next month's spend."}]}]}


@pytest.fixture
def env(tmp_path: Path, tls: TLS) -> Iterator[Env]:
    with running(tmp_path, tls, first_byte_timeout_s=1.0, idle_timeout_s=1.0) as e:
        yield e


def call(env: Env, op: str = "converse", **headers: str) -> requests.Response:
    return env.post(f"/model/{NOVA}/{op}", HELLO, headers=headers)


def test_upstream_down(tmp_path: Path, tls: TLS) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with running(tmp_path, tls, upstream_url=dead) as env:
        r = call(env)
        assert r.status_code == 503
        assert r.headers["x-amzn-ErrorType"] == "ServiceUnavailableException"
        assert "could not reach Bedrock" in r.json()["message"]
        (event,) = env.events(1)
        assert event.status == "error" and event.error_type == "ServiceUnavailableException"
        assert event.cost_usd == 0 and not event.unpriced


def test_upstream_too_slow_is_model_timeout(env: Env) -> None:
    r = call(env, **{"X-Sim-Latency-Ms": "3000"})
    assert r.status_code == 408
    assert r.headers["x-amzn-ErrorType"] == "ModelTimeoutException"
    (event,) = env.events(1)
    assert event.error_type == "ModelTimeoutException"


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("throttling", 429, "ThrottlingException"),
        ("internal", 500, "InternalServerException"),
        ("unavailable", 503, "ServiceUnavailableException"),
        ("model-error", 424, "ModelErrorException"),
    ],
)
def test_upstream_errors_are_relayed_and_recorded(
    env: Env, kind: str, status: int, code: str
) -> None:
    r = call(env, **{"X-Sim-Error": kind})
    assert r.status_code == status and r.headers["x-amzn-ErrorType"] == code
    assert r.headers["x-amzn-RequestId"]
    (event,) = env.events(1)
    assert (event.status, event.http_status, event.error_type) == ("error", status, code)
    assert event.request_id == r.headers["x-amzn-RequestId"] and event.cost_usd == 0


def test_boto3_sees_throttling_and_retries_it(env: Env, monkeypatch: Any) -> None:
    client = env.boto3(monkeypatch, attempts=2)
    client.meta.events.register(
        "before-call.bedrock-runtime.Converse",
        lambda params, **_: params["headers"].__setitem__("X-Sim-Error", "throttling"),
    )
    with pytest.raises(client.exceptions.ThrottlingException):
        client.converse(modelId="amazon.nova-lite-v1:0", messages=HELLO["messages"])
    assert len(env.events(2)) == 2  # both attempts were recorded


def test_mid_stream_exception(env: Env, monkeypatch: Any) -> None:
    client = env.boto3(monkeypatch)
    client.meta.events.register(
        "before-call.bedrock-runtime.ConverseStream",
        lambda params, **_: params["headers"].update(
            {"X-Sim-Error": "stream:internal", "X-Sim-Error-After": "3"}
        ),
    )
    stream = client.converse_stream(modelId="amazon.nova-lite-v1:0", messages=HELLO["messages"])
    with pytest.raises(EventStreamError) as info:
        try:
            list(stream["stream"])
        finally:
            stream["stream"].close()  # botocore leaves a failed stream's socket open
    assert info.value.response["Error"]["Code"] == "internalServerException"
    (event,) = env.events(1)
    assert event.status == "error" and event.error_type == "InternalServerException"
    assert event.streamed


def test_client_disconnect_leaves_a_partial_event(tmp_path: Path, tls: TLS) -> None:
    slow = SimSettings(log_requests=False, tokens_per_second=40)
    with running(tmp_path, tls, sim=slow) as env:
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 4000,
            "messages": [{"role": "user", "content": "Write a long essay."}],
        }
        started = time.monotonic()
        with requests.Session() as s:
            r = s.post(
                f"{env.gateway_url}/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream",
                json=body,
                stream=True,
                verify=tls.cafile,
                timeout=30,
                headers={"X-Spendgate-Key": env.key, "X-Sim-Output-Tokens": "2000"},
            )
            assert r.status_code == 200
            first = next(r.iter_content(chunk_size=None))
            assert first
            r.close()  # the client goes away 50 s before the answer would end
        (event,) = env.events(1, timeout=10)
        assert time.monotonic() - started < 15
        assert event.status == "partial" and event.partial and event.streamed
        assert event.input_tokens > 0  # what message_start stated
        assert event.cost_usd is not None and event.cost_usd > 0
