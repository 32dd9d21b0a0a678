"""Model-invocation-log records in AWS's format, written as AWS's S3 delivery lays them out.

Objects are gzipped JSON lines under
``<dir>/AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<stamp>_<id>.json.gz``
(bedrock-formats.md §6). Only successful calls are logged. Request and response bodies are
included only with ``invocation_log_bodies`` (AWS's text data delivery); by default a record
carries metadata and token counts only.
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
import threading
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any


def log_record(
    *,
    when: datetime,
    account_id: str,
    identity_arn: str,
    region: str,
    inference_region: str,
    request_id: str,
    operation: str,
    model_id: str,
    metadata: dict[str, str] | None,
    input_tokens: int,
    cache_read: int,
    cache_write: int,
    output_tokens: int,
    bodies: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accountId": account_id,
        "identity": {"arn": identity_arn},
        "region": region,
        "requestId": request_id,
        "operation": operation,
        "modelId": model_id,
        "inferenceRegion": inference_region,
        "input": {
            "inputContentType": "application/json",
            "inputTokenCount": input_tokens,
            "cacheReadInputTokenCount": cache_read,
            "cacheWriteInputTokenCount": cache_write,
        },
        "output": {"outputContentType": "application/json", "outputTokenCount": output_tokens},
    }
    if metadata:
        record["requestMetadata"] = metadata
    if bodies is not None:
        record["input"]["inputBodyJson"], record["output"]["outputBodyJson"] = bodies
    return record


class InvocationLogWriter:
    """Buffers records; ``flush`` writes one object per hour folder, atomically (tmp + rename)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._pending: dict[Path, list[bytes]] = defaultdict(list)

    def add(self, record: dict[str, Any], when: datetime) -> None:
        folder = (
            self._root
            / "AWSLogs"
            / record["accountId"]
            / "BedrockModelInvocationLogs"
            / record["region"]
            / when.strftime("%Y/%m/%d/%H")
        )
        line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            self._pending[folder].append(line)

    def flush(self, now: datetime) -> int:
        with self._lock:
            pending, self._pending = self._pending, defaultdict(list)
        written = 0
        for folder, lines in pending.items():
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{now.strftime('%Y%m%dT%H%M%SZ')}_{secrets.token_hex(4)}.json.gz"
            tmp = folder / f".{name}.tmp"
            tmp.write_bytes(gzip.compress(b"".join(lines)))
            os.replace(tmp, folder / name)
            written += len(lines)
        return written
