"""Bad, hostile and missing input gets the AWS error Bedrock would return: never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import API_KEY

NOVA = "amazon.nova-lite-v1%3A0"
AUTH = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
GOOD = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}


def post(url: str, path: str, body: Any = GOOD, headers: dict[str, str] | None = None) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(url + path, data=data, headers={**AUTH, **(headers or {})}, timeout=10)


def assert_aws_error(r: Any, status: int, code: str, fragment: str = "") -> None:
    assert r.status_code == status, r.text
    assert r.headers["x-amzn-ErrorType"] == code
    assert r.headers["x-amzn-RequestId"]
    message = r.json()["message"]
    assert fragment in message


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code", "fragment"),
    [
        (f"/model/{NOVA}/converse", b"{not json", None, 400, "ValidationException", "Malformed"),
        (f"/model/{NOVA}/converse", [1, 2], None, 400, "ValidationException", "JSON object"),
        (
            f"/model/{NOVA}/converse",
            {},
            None,
            400,
            "ValidationException",
            "Value null at 'messages'",
        ),
        (
            f"/model/{NOVA}/converse",
            {"messages": [{"role": "robot", "content": [{"text": "x"}]}]},
            None,
            400,
            "ValidationException",
            "messages.1.member.role",
        ),
        (
            f"/model/{NOVA}/converse",
            {"messages": [{"role": "assistant", "content": [{"text": "x"}]}]},
            None,
            400,
            "ValidationException",
            "must start with a user message",
        ),
        (
            f"/model/{NOVA}/converse",
            {**GOOD, "requestMetadata": {f"k{i}": "v" for i in range(17)}},
            None,
            400,
            "ValidationException",
            "between 1 and 16 entries",
        ),
        (
            f"/model/{NOVA}/converse",
            {**GOOD, "requestMetadata": {"team": "a!b"}},
            None,
            400,
            "ValidationException",
            "character outside",
        ),
        (
            f"/model/{NOVA}/converse",
            {**GOOD, "inferenceConfig": {"maxTokens": 0}},
            None,
            400,
            "ValidationException",
            "maxTokens",
        ),
        (
            f"/model/{NOVA}/converse",
            {**GOOD, "inferenceConfig": {"maxTokens": 999999}},
            None,
            400,
            "ValidationException",
            "exceeds the model limit",
        ),
        (
            f"/model/{NOVA}/invoke",
            {"messages": []},
            {"Content-Type": "text/plain"},
            400,
            "ValidationException",
            "content type",
        ),
        (
            "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke",
            {"messages": []},
            None,
            400,
            "ValidationException",
            "required key [anthropic_version]",
        ),
        (
            f"/model/{NOVA}/invoke",
            GOOD,
            {"X-Amzn-Bedrock-Request-Metadata": "not json"},
            400,
            "ValidationException",
            "JSON object",
        ),
        (f"/model/{NOVA}/frobnicate", GOOD, None, 404, "UnknownOperationException", "frobnicate"),
        (
            "/model/acme.no-such-model-v1%3A0/converse",
            GOOD,
            None,
            400,
            "ValidationException",
            "model identifier is invalid",
        ),
        ("/model/..%2F..%2Fetc%2Fpasswd/converse", GOOD, None, 400, "ValidationException", ""),
        ("/model/%2e%2e/converse", GOOD, None, 400, "ValidationException", ""),
        ("/model/a/b/converse", GOOD, None, 404, "UnknownOperationException", ""),
        ("/not-bedrock", GOOD, None, 404, "UnknownOperationException", ""),
        (
            f"/model/{NOVA}/converse",
            GOOD,
            {"X-Sim-Error": "bogus"},
            400,
            "ValidationException",
            "X-Sim-Error",
        ),
        (
            f"/model/{NOVA}/converse",
            GOOD,
            {"X-Sim-Latency-Ms": "-5"},
            400,
            "ValidationException",
            "x-sim-latency-ms",
        ),
    ],
)
def test_bad_requests(
    sim_url: str, path: str, body: Any, headers: Any, status: int, code: str, fragment: str
) -> None:
    assert_aws_error(post(sim_url, path, body, headers), status, code, fragment)


def test_oversized_body_is_refused_before_reading(sim_factory: Any) -> None:
    url = sim_factory(max_body_bytes=1000)
    big = {"messages": [{"role": "user", "content": [{"text": "x" * 5000}]}]}
    assert_aws_error(
        post(url, f"/model/{NOVA}/converse", big),
        400,
        "ValidationException",
        "exceeds the maximum of 1000 bytes",
    )


def test_chunked_oversized_body_is_refused(sim_factory: Any) -> None:
    url = sim_factory(max_body_bytes=1000)
    chunks = iter([b"{" + b" " * 600, b" " * 600 + b"}"])  # no Content-Length: chunked
    r = requests.post(f"{url}/model/{NOVA}/converse", data=chunks, headers=AUTH, timeout=10)
    assert_aws_error(r, 400, "ValidationException", "exceeds the maximum")


def test_get_is_not_an_operation(sim_url: str) -> None:
    r = requests.get(f"{sim_url}/model/{NOVA}/converse", headers=AUTH, timeout=10)
    assert_aws_error(r, 404, "UnknownOperationException", "GET")


def test_unsigned_request_is_missing_authentication(sim_url: str) -> None:
    r = requests.post(f"{sim_url}/model/{NOVA}/converse", json=GOOD, timeout=10)
    assert_aws_error(r, 403, "MissingAuthenticationTokenException", "Missing Authentication")


def test_unknown_api_key_is_denied(sim_url: str) -> None:
    r = post(sim_url, f"/model/{NOVA}/converse", headers={"Authorization": "Bearer nope"})
    assert_aws_error(r, 403, "AccessDeniedException", "API Key")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_labels = st.sampled_from(
    [
        NOVA,
        "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0",
        "meta.llama3-1-8b-instruct-v1%3A0",
        "amazon.titan-embed-text-v2%3A0",
        "%00",
        "%ff%fe",
        "x" * 3000,
        "arn%3Aaws%3Abedrock",
    ]
)
_ops = st.sampled_from(
    ["converse", "converse-stream", "invoke", "invoke-with-response-stream", "count-tokens"]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(label=_labels, op=_ops, body=_json | st.binary(max_size=200))
def test_fuzzed_requests_never_fail_server_side(
    sim_url: str, label: str, op: str, body: Any
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = post(sim_url, f"/model/{label}/{op}", raw)
    assert r.status_code < 500, r.text
    if r.status_code != 200:
        assert r.headers["x-amzn-ErrorType"] and "message" in r.json()
