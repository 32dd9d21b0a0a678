"""Budgets and rate limits end to end: real clients, gateway, simulator, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import secrets
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import requests
from botocore.config import Config

from spendgate.settings import SimSettings

from gateway_env import Env, running
from helpers import TLS, free_port, require_service, tracked

TOKEN = "budget-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
NOVA = "amazon.nova-lite-v1:0"
UNPRICED = "us.writer.palmyra-x5-v1:0"
REDIS_URL = "redis://127.0.0.1:6379/0"
FAIL = {"X-Sim-Error": "internal"}


def converse(
    text: str = "Summarise the quarterly Bedrock bill.", max_tokens: int = 400
) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": [{"text": text}]}],
        "inferenceConfig": {"maxTokens": max_tokens},
    }


def api(env: Env, method: str, path: str, body: Any = None) -> requests.Response:
    with requests.Session() as session:
        response = session.request(
            method,
            env.gateway_url + path,
            json=body,
            headers={**AUTH, "Connection": "close"},
            verify=env.tls.cafile,
            timeout=30,
        )
        response.close()
        return response


def create(env: Env, **fields: Any) -> str:
    body = {"name": f"b-{secrets.token_hex(3)}", "window": "calendar_day", **fields}
    response = api(env, "POST", "/api/v1/budgets", body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def status(env: Env, budget_id: str) -> dict[str, Any]:
    response = api(env, "GET", f"/api/v1/budgets/{budget_id}/status")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_concurrent_requests_never_overspend_a_blocking_budget(tmp_path: Path, tls: TLS) -> None:
    sim = SimSettings(log_requests=False, latency_ms=300)  # every call is in flight together
    with running(tmp_path, tls, sim=sim, admin_token=TOKEN) as env:
        limit = Decimal("0.30")  # about 40 worst cases of a 400-token Sonnet answer
        budget_id = create(env, metric="cost_usd", limit=str(limit), scope="project=load")
        codes = asyncio.run(_burst(env, 150))
        assert codes.count(200) >= 10
        assert codes.count(400) >= 50  # the rest were denied before they were forwarded
        assert set(codes) == {200, 400}
        events = env.events(150)
        ok = [e for e in events if e.status == "ok"]
        spent = sum((e.cost_usd for e in ok if e.cost_usd is not None), Decimal(0))
        assert len(ok) == codes.count(200)
        assert spent <= limit  # never overspent: each call held its worst case first
        state = status(env, budget_id)
        assert Decimal(state["spent"]) == spent  # settled to the real cost, to the nanodollar
        assert Decimal(state["reserved"]) == 0
        denied = [e for e in events if e.budget_decision == f"denied:{budget_id}"]
        assert len(denied) == codes.count(400)
        assert all(e.error_type == "ServiceQuotaExceededException" for e in denied)


async def _burst(env: Env, count: int, *others: Env) -> list[int]:
    """``count`` calls at once, spread over ``env`` and ``others`` (replicas)."""
    limits = httpx.Limits(max_connections=count)
    context = ssl.create_default_context(cafile=env.tls.cafile)
    gateways = (env, *others)
    async with httpx.AsyncClient(verify=context, limits=limits, timeout=60) as client:

        async def one(i: int) -> int:
            gateway = gateways[i % len(gateways)]
            url = f"{gateway.gateway_url}/model/{SONNET}/converse"
            headers = {"X-Spendgate-Key": gateway.key, "X-Project": "load"}
            response = await client.post(url, json=converse(), headers=headers)
            return response.status_code

        return list(await asyncio.gather(*(one(i) for i in range(count))))


@contextmanager
def two_replicas(
    tmp_path: Path, tls: TLS, pg_url: str, **settings: Any
) -> Iterator[tuple[Env, Env]]:
    """Two gateways sharing one PostgreSQL database and one Redis (a fresh key prefix), the
    second reloading budgets every 0.1 s."""
    require_service("Redis", "127.0.0.1", 6379)
    shared = {
        "db_url": pg_url,
        "admin_token": TOKEN,
        "redis_url": REDIS_URL,
        "redis_prefix": f"sgtest-{secrets.token_hex(4)}",
        "budget_refresh_s": 0.1,
        **settings,
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with running(tmp_path / "a", tls, **shared) as a, running(tmp_path / "b", tls, **shared) as b:
        yield a, b


@pytest.mark.postgres
@pytest.mark.redis
def test_concurrent_requests_on_two_replicas_never_overspend(
    tmp_path: Path, tls: TLS, own_pg_url: str
) -> None:
    sim = SimSettings(log_requests=False, latency_ms=300)
    with two_replicas(tmp_path, tls, own_pg_url, sim=sim) as (a, b):
        limit = Decimal("0.30")
        budget_id = create(a, metric="cost_usd", limit=str(limit), scope="project=load")
        time.sleep(0.5)  # replica b reloads budgets every 0.1 s
        codes = asyncio.run(_burst(a, 150, b))
        assert set(codes) == {200, 400} and codes.count(400) >= 50
        ok = [e for e in a.events(150) if e.status == "ok" and e.project == "load"]
        assert len(ok) == codes.count(200)  # both replicas write to the one PostgreSQL
        spent = sum((e.cost_usd for e in ok if e.cost_usd is not None), Decimal(0))
        assert spent <= limit
        assert Decimal(status(b, budget_id)["spent"]) == spent


def test_a_restart_keeps_spend(tmp_path: Path, tls: TLS) -> None:
    with running(tmp_path, tls, admin_token=TOKEN) as env:
        budget_id = create(env, metric="cost_usd", limit="0.02", scope="department=research")
        for _ in range(2):
            assert env.post(f"/model/{SONNET}/converse", converse()).status_code == 200
        env.events(2)
        before = status(env, budget_id)
    assert Decimal(before["spent"]) > 0
    with running(tmp_path, tls, admin_token=TOKEN) as env:
        after = status(env, budget_id)
        assert after["spent"] == before["spent"]  # rebuilt from the stored events
        # 1,150 output tokens at $16.50/M ($0.019) fit the limit alone, not after the spend
        response = env.post(f"/model/{SONNET}/converse", converse(max_tokens=1150))
        assert response.status_code == 400
        assert response.headers["x-amzn-ErrorType"] == "ServiceQuotaExceededException"


@pytest.mark.postgres
@pytest.mark.redis
def test_two_gateways_sharing_redis_keep_one_limit(
    tmp_path: Path, tls: TLS, own_pg_url: str
) -> None:
    with two_replicas(tmp_path, tls, own_pg_url) as (a, b):
        budget_id = create(a, metric="requests", limit="10", scope="agent=summariser")
        time.sleep(0.5)  # replica b reloads budgets every 0.1 s
        codes = [
            gateway.post(f"/model/{NOVA}/converse", converse()).status_code
            for _ in range(8)
            for gateway in (a, b)
        ]
        assert codes.count(200) == 10
        assert codes.count(400) == 6
        assert status(b, budget_id)["spent"] == "10"


@pytest.mark.parametrize("mode", ["legacy", "standard"])
def test_boto3_sees_an_exhausted_budget_once_in_both_retry_modes(
    tmp_path: Path, tls: TLS, monkeypatch: Any, mode: str
) -> None:
    with running(tmp_path, tls, admin_token=TOKEN) as env:
        budget_id = create(env, metric="requests", limit="1", name="one-call")
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", env.gateway_url)
        monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", env.key)
        monkeypatch.setenv("AWS_CA_BUNDLE", env.tls.cafile)
        retries = {"total_max_attempts": 5, "mode": mode}
        client = tracked(
            boto3.client("bedrock-runtime", region_name="us-east-1", config=Config(retries=retries))
        )
        attempts: list[str] = []
        client.meta.events.register("before-send", lambda **kw: attempts.append("sent"))
        messages = converse()["messages"]
        client.converse(modelId=NOVA, messages=messages)
        attempts.clear()
        with pytest.raises(client.exceptions.ServiceQuotaExceededException) as caught:
            client.converse(modelId=NOVA, messages=messages)
        assert attempts == ["sent"]  # no retry
        error = caught.value.response
        message = error["Error"]["Message"]
        assert budget_id in message and "one-call" in message
        assert "limit 1 requests per calendar day (UTC)" in message
        assert "spent 1 requests" in message and "resets at" in message
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_rate_limit_is_a_throttle_with_retry_after(tmp_path: Path, tls: TLS) -> None:
    with running(tmp_path, tls, admin_token=TOKEN) as env:
        budget_id = create(env, metric="requests", limit="2", window="minute")
        for _ in range(2):
            assert env.post(f"/model/{NOVA}/converse", converse()).status_code == 200
        response = env.post(f"/model/{NOVA}/converse", converse())
        assert response.status_code == 429
        assert response.headers["x-amzn-ErrorType"] == "ThrottlingException"
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert "rate limit '" in response.json()["message"]
        assert response.json()["budgetId"] == budget_id


def test_an_alert_budget_never_blocks(tmp_path: Path, tls: TLS) -> None:
    with running(tmp_path, tls, admin_token=TOKEN) as env:
        budget_id = create(env, metric="cost_usd", limit="0.000001", action="alert")
        for _ in range(3):
            assert env.post(f"/model/{NOVA}/converse", converse()).status_code == 200
        env.events(3)
        state = status(env, budget_id)
        assert Decimal(state["spent"]) > Decimal("0.000001")
        assert state["thresholds_crossed"] == [50, 80, 100]


def test_downgrade_routes_to_the_cheaper_model_and_records_it(tmp_path: Path, tls: TLS) -> None:
    with running(tmp_path, tls, admin_token=TOKEN) as env:
        budget_id = create(
            env,
            metric="requests",
            limit="1",
            scope="model=us.anthropic.claude-sonnet-4-5*",
            action="downgrade",
            downgrade_to=HAIKU,
        )
        first = env.post(f"/model/{SONNET}/converse", converse())
        second = env.post(f"/model/{SONNET}/converse", converse())
        assert (first.status_code, second.status_code) == (200, 200)
        newest, oldest = env.events(2)[:2]
        assert (oldest.model_id, oldest.routed_from) == (SONNET, None)
        assert (newest.model_id, newest.routed_from) == (HAIKU, SONNET)
        assert newest.budget_decision == f"downgraded:{budget_id}"
        assert newest.cost_usd is not None and oldest.cost_usd is not None
        assert newest.cost_usd < oldest.cost_usd


def test_a_budget_on_an_unpriced_model_still_trips(tmp_path: Path, tls: TLS) -> None:
    with running(tmp_path, tls, admin_token=TOKEN) as env:
        budget_id = create(env, metric="cost_usd", limit="0.02", scope=f"model={UNPRICED}")
        body = converse(max_tokens=100)  # worst case about $0.0078 at the $15/$75 per 1M rates
        codes = [env.post(f"/model/{UNPRICED}/converse", body).status_code for _ in range(8)]
        assert 200 in codes and codes[-1] == 400  # unpriced is not free: the budget trips
        events = [e for e in env.events(8) if e.status == "ok"]
        assert events and all(e.unpriced and e.cost_usd is None for e in events)
        assert Decimal(status(env, budget_id)["spent"]) > 0


def test_sentry_metrics_count_approved_denied_and_failed(tmp_path: Path, tls: TLS) -> None:
    with running(tmp_path, tls, admin_token=TOKEN) as env:
        create(env, metric="requests", limit="1", scope="cost_center=cc-9")
        headers = {"X-Cost-Center": "cc-9", "X-Application": "billing-bot"}
        codes = [
            env.post(f"/model/{NOVA}/converse", converse(), headers=headers).status_code,
            env.post(f"/model/{NOVA}/converse", converse(), headers=headers).status_code,
            env.post(f"/model/{NOVA}/converse", converse(), headers=FAIL).status_code,
        ]
        assert codes == [200, 400, 500]
        env.events(3)
        totals = api(env, "GET", "/api/v1/sentry").json()["totals"]
        assert totals["TotalRequests"] == 3
        assert totals["RateLimitApproved"] == 2
        assert totals["RateLimitDenied"] == 1
        assert totals["InvocationFailed"] == 1
        assert totals["InputTokens"] > 0 and totals["OutputTokens"] > 0
        text = requests.get(env.gateway_url + "/metrics", verify=env.tls.cafile, timeout=10).text
        assert (
            'spendgate_sentry_rate_limit_denied_total{application="billing-bot",'
            'cost_center="cc-9",environment="",model="amazon.nova-lite-v1:0",'
            'model_id="amazon.nova-lite-v1:0"} 1.0'
        ) in text


def test_a_config_budget_is_enforced(tmp_path: Path, tls: TLS) -> None:
    budgets = [{"name": "one", "metric": "requests", "window": "calendar_day", "limit": 1}]
    with running(tmp_path, tls, budgets=budgets) as env:
        body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
        assert env.post("/model/amazon.nova-lite-v1:0/converse", body).status_code == 200
        denied = env.post("/model/amazon.nova-lite-v1:0/converse", body)
        assert denied.status_code == 400
        assert denied.json()["budgetId"] == "cfg_one"


def test_budgets_fail_closed_when_redis_is_unreachable(tmp_path: Path, tls: TLS) -> None:
    budgets = [
        {"name": "x", "scope": "project=x", "metric": "requests", "window": "hour", "limit": 9}
    ]
    down = f"redis://127.0.0.1:{free_port()}/0"
    with running(tmp_path, tls, admin_token=TOKEN, budgets=budgets, redis_url=down) as env:
        body = converse()
        free = env.post(f"/model/{NOVA}/converse", body, headers={"X-Project": "y"})
        assert free.status_code == 200  # no budget applies: Redis is not asked
        held = env.post(f"/model/{NOVA}/converse", body, headers={"X-Project": "x"})
        assert held.status_code == 503
        assert held.headers["x-amzn-ErrorType"] == "ServiceUnavailableException"
        assert "cannot check budgets" in held.json()["message"]
        assert "Redis at redis://127.0.0.1" in held.json()["message"]
