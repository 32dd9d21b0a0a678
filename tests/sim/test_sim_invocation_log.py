"""Invocation-log records in AWS's format and S3 layout, written when the simulator stops."""

from __future__ import annotations

import gzip
import json
import re
import time
from pathlib import Path
from typing import Any

from helpers import bedrock_client, close_clients

SECRET_PROMPT = "the launch code is swordfish-42"
LAYOUT = re.compile(
    r"AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/\d{4}/\d{2}/\d{2}/\d{2}/"
    r"\d{8}T\d{6}Z_[0-9a-f]{8}\.json\.gz$"
)


def records(root: Path) -> list[dict[str, Any]]:
    files = sorted(root.rglob("*.json.gz"))
    for f in files:
        assert LAYOUT.search(f.relative_to(root).as_posix()), f
    return [
        json.loads(line) for f in files for line in gzip.decompress(f.read_bytes()).splitlines()
    ]


def run_calls(url: str) -> None:
    c = bedrock_client(url)
    messages = [{"role": "user", "content": [{"text": SECRET_PROMPT}]}]
    c.converse(
        modelId="amazon.nova-lite-v1:0",
        messages=messages,
        requestMetadata={"team": "search", "app": "chat"},
    )
    list(
        c.converse_stream(
            modelId="us.anthropic.claude-sonnet-4-5-20250929-v1:0", messages=messages
        )["stream"]
    )
    body = json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": SECRET_PROMPT}],
        }
    )
    r = c.invoke_model_with_response_stream(
        modelId="us.anthropic.claude-sonnet-4-5-20250929-v1:0", body=body
    )
    list(r["body"])
    close_clients()


def wait_for(root: Path, count: int) -> list[dict[str, Any]]:
    """The writer flushes every second; wait (bounded) for ``count`` records."""
    deadline = time.monotonic() + 5
    while len(found := records(root)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def test_records_in_aws_format(sim_factory: Any, tmp_path: Path) -> None:
    url = sim_factory(invocation_log_dir=tmp_path)
    run_calls(url)
    found = wait_for(tmp_path, 3)
    by_op = {r["operation"]: r for r in found}
    assert set(by_op) == {"Converse", "ConverseStream", "InvokeModelWithResponseStream"}
    converse = by_op["Converse"]
    assert converse["schemaType"] == "ModelInvocationLog" and converse["schemaVersion"] == "1.0"
    assert converse["identity"]["arn"] == "arn:aws:iam::123456789012:user/sim-user"
    assert converse["requestMetadata"] == {"team": "search", "app": "chat"}
    assert converse["modelId"] == "amazon.nova-lite-v1:0"
    assert converse["input"]["inputTokenCount"] == 11  # 31 chars -> 8 tokens + 3
    assert converse["output"]["outputTokenCount"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", converse["timestamp"])
    assert by_op["ConverseStream"]["inferenceRegion"] in ("us-east-1", "us-east-2", "us-west-2")
    raw = b"".join(gzip.decompress(f.read_bytes()) for f in tmp_path.rglob("*.json.gz"))
    assert SECRET_PROMPT.encode() not in raw  # no text delivery unless asked


def test_bodies_only_when_asked(sim_factory: Any, tmp_path: Path) -> None:
    url = sim_factory(invocation_log_dir=tmp_path, invocation_log_bodies=True)
    run_calls(url)
    found = wait_for(tmp_path, 3)
    by_op = {r["operation"]: r for r in found}
    assert by_op["Converse"]["input"]["inputBodyJson"]["messages"][0]["content"][0]["text"] == (
        SECRET_PROMPT
    )
    assert isinstance(by_op["InvokeModelWithResponseStream"]["output"]["outputBodyJson"], list)
    assert "output" in by_op["ConverseStream"]["output"]["outputBodyJson"]
