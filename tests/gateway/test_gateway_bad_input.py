"""Bad, hostile and missing input: an AWS-style error with a clear message, and nothing lost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway_env import Env, running
from helpers import TLS

NOVA = "amazon.nova-lite-v1%3A0"
GOOD = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tls: TLS) -> Iterator[Env]:
    with running(tmp_path_factory.mktemp("bad"), tls, max_body_bytes=10_000) as e:
        yield e


def post(env: Env, path: str, body: Any = GOOD, key: str | None = "default", **headers: str) -> Any:
    return env.post(path, body, key=key, headers=headers)


def expect(r: Any, status: int, code: str, fragment: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["x-amzn-ErrorType"] == code
    assert fragment in r.json()["message"], r.json()["message"]
    assert "Traceback" not in r.text


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code", "fragment"),
    [
        (f"/model/{NOVA}/converse", b"{oops", {}, 400, "ValidationException", "not valid JSON"),
        (f"/model/{NOVA}/converse", [1], {}, 400, "ValidationException", "JSON object"),
        (
            f"/model/{NOVA}/converse",
            {"messages": [], "requestMetadata": {"a": "b!"}},
            {},
            400,
            "ValidationException",
            "character outside",
        ),
        (
            f"/model/{NOVA}/converse",
            GOOD,
            {"X-Aws-Region": "evil.example.com"},
            400,
            "ValidationException",
            "X-Aws-Region must be an AWS region",
        ),
        (
            f"/model/{NOVA}/converse",
            GOOD,
            {"X-Aws-Region": "us-east-1/../x"},
            400,
            "ValidationException",
            "X-Aws-Region",
        ),
        (
            f"/model/{NOVA}/converse",
            GOOD,
            {"X-Department": "sales<script>"},
            400,
            "ValidationException",
            "Header x-department has an invalid value",
        ),
        (
            f"/model/{NOVA}/converse",
            GOOD,
            {"X-Project": "p" * 300},
            400,
            "ValidationException",
            "x-project",
        ),
        (
            f"/model/{NOVA}/invoke",
            GOOD,
            {"X-Amzn-Bedrock-Request-Metadata": "[not an object"},
            400,
            "ValidationException",
            "JSON object",
        ),
        ("/model/..%2F..%2Fetc%2Fpasswd/converse", GOOD, {}, 400, "ValidationException", ""),
        ("/model/%2e%2e/converse", GOOD, {}, 400, "ValidationException", ""),
        ("/model/a/b/converse", GOOD, {}, 404, "UnknownOperationException", ""),
        (f"/model/{NOVA}/delete-everything", GOOD, {}, 404, "UnknownOperationException", ""),
        (
            f"/model/{NOVA}/converse",
            GOOD,
            {"X-Aws-Access-Key-Id": "AKIAONLYHALF"},
            400,
            "ValidationException",
            "X-Aws-Secret-Access-Key",
        ),
    ],
)
def test_bad_requests(
    env: Env, path: str, body: Any, headers: dict[str, str], status: int, code: str, fragment: str
) -> None:
    expect(post(env, path, body, **headers), status, code, fragment)


def test_oversized_body(env: Env) -> None:
    big = {"messages": [{"role": "user", "content": [{"text": "x" * 20_000}]}]}
    expect(
        post(env, f"/model/{NOVA}/converse", big),
        400,
        "ValidationException",
        "exceeds the maximum of 10000 bytes",
    )


def test_missing_unknown_revoked_expired_keys(env: Env) -> None:
    expect(
        post(env, f"/model/{NOVA}/converse", key=None), 403, "AccessDeniedException", "no API key"
    )
    expect(
        post(env, f"/model/{NOVA}/converse", key="sg-" + "x" * 43),
        403,
        "AccessDeniedException",
        "unknown API key sg-xxxxxxx",
    )
    revoked_id, revoked = env.add_key("old", revoked_at=datetime.now(UTC) - timedelta(minutes=1))
    expect(
        post(env, f"/model/{NOVA}/converse", key=revoked),
        403,
        "AccessDeniedException",
        f"API key {revoked_id}",
    )
    expect(
        post(env, f"/model/{NOVA}/converse", key=revoked),
        403,
        "AccessDeniedException",
        "was revoked",
    )
    _, expired = env.add_key("temp", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    expect(
        post(env, f"/model/{NOVA}/converse", key=expired),
        403,
        "AccessDeniedException",
        "expired at",
    )


def test_a_key_limited_to_some_models(env: Env) -> None:
    _, key = env.add_key("nova-only", allowed_models=("amazon.nova-*",))
    assert post(env, f"/model/{NOVA}/converse", key=key).status_code == 200
    expect(
        post(env, "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse", key=key),
        403,
        "AccessDeniedException",
        "may not use model",
    )


def test_get_on_a_runtime_path(env: Env) -> None:
    with requests.Session() as s:
        r = s.get(f"{env.gateway_url}/model/{NOVA}/converse", verify=env.tls.cafile, timeout=10)
    expect(r, 404, "UnknownOperationException", "GET")


def test_rejections_are_recorded(tmp_path: Path, tls: TLS) -> None:
    with running(tmp_path, tls) as env:
        post(env, f"/model/{NOVA}/converse", key="sg-nope")
        post(env, f"/model/{NOVA}/converse", {"messages": 1}, **{"X-Department": "a!"})
        events = env.events(2)
    assert {e.status for e in events} == {"rejected"}
    assert {e.error_type for e in events} == {"AccessDeniedException", "ValidationException"}
