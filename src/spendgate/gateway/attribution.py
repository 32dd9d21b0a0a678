"""Who a call belongs to: the key's defaults < request headers < the request's requestMetadata.

Header and metadata names (later wins):

    field         header                       requestMetadata keys
    department    X-Department                 department
    project       X-Project, X-Team (alias)    project, team
    agent         X-Agent                      agent
    user_id       X-User                       user, user_id
    application   X-Application                application
    environment   X-Environment                environment
    cost_center   X-Cost-Center                cost_center, cost-center
    session_id    X-Session-Id (X-Claude-Code-Session-Id)   session_id
    workflow_id   X-Workflow-Id                workflow_id
    tags          X-Tag-<name>                 tag_<name>

Values must satisfy Bedrock's requestMetadata rules (``spendgate.bedrock.metadata``) because
they are written back into the forwarded call: Converse ``requestMetadata`` or InvokeModel's
``X-Amzn-Bedrock-Request-Metadata`` header (at most 16 entries; tags are dropped first), so
AWS's own invocation logs carry the same attribution.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spendgate.bedrock.metadata import MAX_ENTRIES, is_valid_value, metadata_problems
from spendgate.errors import AwsError
from spendgate.events import ATTRIBUTION_FIELDS
from spendgate.gateway import jsoncodec

HEADERS: dict[str, str] = {
    "x-claude-code-session-id": "session_id",  # weaker than X-Session-Id: listed first
    "x-department": "department",
    "x-team": "project",
    "x-project": "project",
    "x-agent": "agent",
    "x-user": "user_id",
    "x-application": "application",
    "x-environment": "environment",
    "x-cost-center": "cost_center",
    "x-session-id": "session_id",
    "x-workflow-id": "workflow_id",
}
METADATA_KEYS: dict[str, str] = {
    "department": "department",
    "team": "project",
    "project": "project",
    "agent": "agent",
    "user": "user_id",
    "user_id": "user_id",
    "application": "application",
    "environment": "environment",
    "cost-center": "cost_center",
    "cost_center": "cost_center",
    "session_id": "session_id",
    "workflow_id": "workflow_id",
}
WRITTEN_AS: dict[str, str] = {f: ("user" if f == "user_id" else f) for f in ATTRIBUTION_FIELDS}
TAG_HEADER = "x-tag-"
TAG_KEY = "tag_"


@dataclass(slots=True)
class Attribution:
    values: dict[str, str] = field(default_factory=dict)  # ATTRIBUTION_FIELDS -> value
    tags: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def as_metadata(self, existing: Mapping[str, str] | None = None) -> dict[str, str]:
        """The requestMetadata to forward: ours, the caller's other entries, tags; <= 16."""
        merged = {WRITTEN_AS[k]: v for k, v in self.values.items()}
        extra = [*(existing or {}).items(), *((TAG_KEY + k, v) for k, v in self.tags.items())]
        for key, value in extra:
            if len(merged) >= MAX_ENTRIES:
                break
            merged.setdefault(key, value)
        return merged


def merge(
    defaults: Mapping[str, str], headers: Mapping[str, str], metadata: Mapping[str, Any] | None
) -> Attribution:
    """Merge the three sources; ``headers`` must have lower-case names. Raises AwsError."""
    out = Attribution(values={k: v for k, v in defaults.items() if k in ATTRIBUTION_FIELDS and v})
    for header, name in HEADERS.items():
        value = headers.get(header)
        if value is not None:
            out.values[name] = _checked(value, header)
    for header, value in headers.items():
        if header.startswith(TAG_HEADER) and len(header) > len(TAG_HEADER):
            out.tags[_checked(header[len(TAG_HEADER) :], header)] = _checked(value, header)
    for key, value in (metadata or {}).items():
        if key in METADATA_KEYS and isinstance(value, str):
            out.values[METADATA_KEYS[key]] = value
        elif key.startswith(TAG_KEY) and isinstance(value, str):
            out.tags[key[len(TAG_KEY) :]] = value
    return out


def _checked(value: str, header: str) -> str:
    value = value.strip()
    if not is_valid_value(value):
        raise AwsError(
            "ValidationException",
            f"Header {header} has an invalid value: use at most 256 letters, digits, spaces "
            "and : _ @ $ # = / + , - . (the value is written to Bedrock's requestMetadata)",
        )
    return value


def inject_converse(body: bytes, doc: Mapping[str, Any], metadata: Mapping[str, str]) -> bytes:
    """The Converse body with ``requestMetadata`` set; untouched bytes when nothing changes.

    When the caller sent no requestMetadata the entry is spliced in after the opening brace, so
    the rest of the body is forwarded byte for byte."""
    if doc.get("requestMetadata") == metadata:
        return body
    encoded = jsoncodec.dumps(dict(metadata))
    if "requestMetadata" not in doc:
        start = body.index(b"{") + 1
        empty = body[start:].strip() == b"}"
        return (
            body[:start] + b'"requestMetadata":' + encoded + (b"" if empty else b",") + body[start:]
        )
    return json.dumps({**doc, "requestMetadata": dict(metadata)}, separators=(",", ":")).encode()


def check_metadata(metadata: Any) -> dict[str, str] | None:
    """A caller's requestMetadata must already satisfy Bedrock's rules (it is forwarded)."""
    if metadata is None:
        return None
    problems = metadata_problems(metadata)
    if problems:
        raise AwsError(
            "ValidationException",
            f"{len(problems)} validation error(s) detected: " + "; ".join(problems),
        )
    return dict(metadata)
