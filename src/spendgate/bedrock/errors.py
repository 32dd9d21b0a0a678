"""AWS-style errors on the wire: HTTP error responses and in-stream exception frames.

HTTP (restJson1, bedrock-formats.md §4)::

    HTTP/1.1 429
    x-amzn-RequestId: <uuid>
    x-amzn-ErrorType: ThrottlingException[:http://internal.amazon.com/coral/...]
    Content-Type: application/json

    {"message":"Too many requests, please wait before trying again."}

Readers take the code from the ``x-amzn-ErrorType`` header (cut at the first ``:``, then after
the last ``#``, as botocore's ``RestJSONParser`` does), else from the body's ``__type`` or
``code``; the message from ``message`` or ``Message``. Extra body members (``originalStatusCode``,
``resourceName`` ...) travel in ``AwsError.extra``.

In a stream (§2.3, §2.5) a modeled error is a frame with ``:message-type: exception`` and
``:exception-type`` set to the lowerCamel error name (``throttlingException``), payload
``{"message": ...}``; an unmodeled one has ``:message-type: error`` with ``:error-code`` and
``:error-message`` headers. Both arrive after HTTP 200.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from spendgate.bedrock.eventstream import Frame, encode_exception
from spendgate.errors import AWS_ERROR_STATUS, AwsError

# The code a bare HTTP status stands for when the response names no type we can use.
_CODE_FOR_STATUS: dict[int, str] = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    413: "RequestEntityTooLargeException",
    415: "UnsupportedMediaTypeException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_CONSUMED_KEYS = frozenset({"message", "Message", "__type", "code", "Code"})


def error_response(err: AwsError, *, request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """``(status, headers, body)`` of the HTTP error response Bedrock would send for ``err``."""
    headers = [
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", err.code),
        ("Content-Type", "application/json"),
    ]
    return err.status, headers, _error_body(err)


def parse_error_response(status: int, headers: Mapping[str, str], body: bytes) -> AwsError:
    """The ``AwsError`` an upstream HTTP error response describes (header names in any case).

    The type is kept when we know it or when it agrees with the HTTP status; otherwise (absent,
    or unknown and disagreeing with the status) the code comes from the status, so that
    ``AwsError.status`` reproduces the upstream status where a code for it exists.
    """
    doc = _json_object(body)
    text = body.decode("utf-8", "replace").strip()
    message = _message(doc) if doc is not None else text
    raw_type = _header(headers, "x-amzn-errortype") or _body_type(doc)
    code = _clean_type(raw_type) if raw_type else ""
    if code not in AWS_ERROR_STATUS and (not code or AwsError(code, "").status != status):
        code = _code_for_status(status)
    if not message:
        message = f"Bedrock returned HTTP {status} ({code}) without a message."
    extra = {k: v for k, v in (doc or {}).items() if k not in _CONSUMED_KEYS}
    return AwsError(code, message, **extra)


def exception_frame(err: AwsError) -> bytes:
    """The in-stream ``exception`` frame for ``err``: ``:exception-type`` is the lowerCamel code."""
    return encode_exception(_lower_camel(err.code), {"message": err.message, **err.extra})


def error_from_frame(frame: Frame) -> AwsError | None:
    """The error an ``exception`` or ``error`` frame carries (UpperCamel code); None for events."""
    kind = frame.message_type
    if kind == "exception":
        doc = _json_object(frame.payload)
        message = _message(doc) if doc is not None else frame.payload.decode("utf-8", "replace")
        extra = {k: v for k, v in (doc or {}).items() if k not in _CONSUMED_KEYS}
        name = frame.exception_type or "internalServerException"
        return AwsError(_upper_camel(name), message or f"in-stream {name}", **extra)
    if kind == "error":
        code = frame.headers.get(":error-code")
        detail = frame.headers.get(":error-message")
        code_text = code if isinstance(code, str) and code else "InternalServerException"
        text = detail if isinstance(detail, str) and detail else f"in-stream {code_text}"
        return AwsError(_upper_camel(code_text), text)
    return None


def _error_body(err: AwsError) -> bytes:
    return json.dumps({"message": err.message, **err.extra}, separators=(",", ":")).encode()


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _message(doc: Mapping[str, Any]) -> str:
    value = doc.get("message", doc.get("Message", ""))
    return value if isinstance(value, str) else json.dumps(value)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _body_type(doc: Mapping[str, Any] | None) -> str | None:
    if doc is None:
        return None
    for key in ("__type", "code", "Code"):
        value = doc.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _clean_type(raw: str) -> str:
    """``ns#ThrottlingException:http://internal...`` -> ``ThrottlingException``."""
    return raw.split(":", 1)[0].rsplit("#", 1)[-1].strip()


def _code_for_status(status: int) -> str:
    if status in _CODE_FOR_STATUS:
        return _CODE_FOR_STATUS[status]
    return "InternalServerException" if status >= 500 else "ValidationException"


def _lower_camel(code: str) -> str:
    return code[:1].lower() + code[1:]


def _upper_camel(code: str) -> str:
    return code[:1].upper() + code[1:]
