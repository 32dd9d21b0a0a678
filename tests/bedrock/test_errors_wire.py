"""AWS-style errors on the wire, checked against botocore's own parsers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import HeadersDict
from botocore.eventstream import EventStream
from botocore.exceptions import EventStreamError as BotocoreEventStreamError
from botocore.model import ServiceModel
from botocore.parsers import EventStreamJSONParser, RestJSONParser
from botocore.session import get_session

from spendgate.bedrock.errors import (
    error_from_frame,
    error_response,
    exception_frame,
    parse_error_response,
)
from spendgate.bedrock.eventstream import Decoder, encode_event, encode_frame
from spendgate.errors import AWS_ERROR_STATUS, AwsError

VECTORS = Path(__file__).resolve().parents[1] / "fixtures" / "aws" / "eventstream-test-vectors.json"
STREAM_EXCEPTIONS = [
    "InternalServerException",
    "ModelStreamErrorException",
    "ValidationException",
    "ThrottlingException",
    "ServiceUnavailableException",
]


@pytest.fixture(scope="module")
def service() -> ServiceModel:
    return get_session().get_service_model("bedrock-runtime")


def botocore_error(service: ServiceModel, status: int, headers: Any, body: bytes) -> Any:
    """What boto3 would report for this HTTP response to a Converse call."""
    response = {"status_code": status, "headers": HeadersDict(headers), "body": body}
    return RestJSONParser().parse(response, service.operation_model("Converse").output_shape)


class _RawStream:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self) -> Iterator[bytes]:
        yield self._data

    def close(self) -> None:
        pass


def botocore_stream(service: ServiceModel, operation: str, data: bytes) -> list[Any]:
    output = service.operation_model(operation).output_shape
    member = "stream" if operation == "ConverseStream" else "body"
    stream = EventStream(
        _RawStream(data), output.members[member], EventStreamJSONParser(), operation
    )
    return list(stream)


# --- HTTP error responses -----------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(AWS_ERROR_STATUS))
def test_botocore_reads_our_error_response(service: ServiceModel, code: str) -> None:
    err = AwsError(code, f"{code} happened, try again.")
    status, headers, body = error_response(err, request_id="req-1")
    parsed = botocore_error(service, status, headers, body)
    assert status == AWS_ERROR_STATUS[code]
    assert parsed["Error"] == {"Code": code, "Message": err.message}
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"
    assert dict(headers)["Content-Type"] == "application/json"


def test_error_response_body_is_compact_with_extra_members() -> None:
    err = AwsError("ModelErrorException", "model failed", originalStatusCode=500, resourceName="m")
    _, _, body = error_response(err, request_id="r")
    assert json.loads(body) == {
        "message": "model failed",
        "originalStatusCode": 500,
        "resourceName": "m",
    }
    assert b" " not in body.replace(b"model failed", b"")


@pytest.mark.parametrize("code", sorted(AWS_ERROR_STATUS))
def test_parse_inverts_error_response(code: str) -> None:
    err = AwsError(code, "it broke", originalStatusCode=503)
    status, headers, body = error_response(err, request_id="r")
    back = parse_error_response(status, dict(headers), body)
    assert (back.code, back.message, back.extra, back.status) == (
        code,
        "it broke",
        {"originalStatusCode": 503},
        status,
    )


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (
            400,
            {
                "X-Amzn-Errortype": "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
            },
            b'{"message":"Malformed input request: 2 schema violations found."}',
        ),
        (429, {"x-amzn-errortype": "aws.bedrock#ThrottlingException"}, b'{"Message":"Too many"}'),
        (403, {"X-AMZN-ERRORTYPE": "AccessDeniedException"}, b'{"message":"denied"}'),
        (404, {}, b'{"code":"ResourceNotFoundException","message":"no such model"}'),
        (424, {}, b'{"__type":"com.amazon.bedrock#ModelErrorException","message":"m"}'),
    ],
)
def test_parse_agrees_with_botocore(
    service: ServiceModel, status: int, headers: dict[str, str], body: bytes
) -> None:
    ours = parse_error_response(status, headers, body)
    theirs = botocore_error(service, status, headers, body)["Error"]
    assert (ours.code, ours.message) == (theirs["Code"], theirs["Message"])
    assert ours.status == status


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (500, "InternalServerException"),
        (502, "InternalServerException"),
        (503, "ServiceUnavailableException"),
        (429, "ThrottlingException"),
        (400, "ValidationException"),
        (403, "AccessDeniedException"),
        (408, "ModelTimeoutException"),
        (418, "ValidationException"),
    ],
)
def test_code_from_status_when_no_type(service: ServiceModel, status: int, code: str) -> None:
    body = b"upstream connect error or disconnect/reset before headers"
    err = parse_error_response(status, {"Content-Type": "text/plain"}, body)
    assert err.code == code
    assert err.message == botocore_error(service, status, {}, body)["Error"]["Message"]


def test_unknown_type_is_kept_only_when_the_status_agrees() -> None:
    agrees = parse_error_response(400, {"x-amzn-ErrorType": "BrandNewException"}, b"{}")
    disagrees = parse_error_response(502, {"x-amzn-ErrorType": "BrandNewException"}, b"{}")
    assert (agrees.code, agrees.status) == ("BrandNewException", 400)
    assert disagrees.code == "InternalServerException"
    assert "502" in disagrees.message


def test_empty_body_still_gives_a_sentence() -> None:
    err = parse_error_response(503, {}, b"")
    assert err.code == "ServiceUnavailableException"
    assert "503" in err.message


# --- in-stream exceptions -----------------------------------------------------------------------


@pytest.mark.parametrize("code", STREAM_EXCEPTIONS)
def test_botocore_raises_our_exception_frame(service: ServiceModel, code: str) -> None:
    data = encode_event("messageStart", {"role": "assistant"}) + exception_frame(
        AwsError(code, "stream broke")
    )
    with pytest.raises(BotocoreEventStreamError) as info:
        botocore_stream(service, "ConverseStream", data)
    expected_type = code[0].lower() + code[1:]
    assert info.value.response["Error"] == {"Code": expected_type, "Message": "stream broke"}


def test_invoke_stream_model_timeout(service: ServiceModel) -> None:
    data = exception_frame(AwsError("ModelTimeoutException", "too slow"))
    with pytest.raises(BotocoreEventStreamError) as info:
        botocore_stream(service, "InvokeModelWithResponseStream", data)
    assert info.value.response["Error"]["Code"] == "modelTimeoutException"


@pytest.mark.parametrize("code", STREAM_EXCEPTIONS)
def test_error_from_our_exception_frame(code: str) -> None:
    err = AwsError(code, "stream broke", originalStatusCode=500, originalMessage="upstream")
    (frame,) = Decoder().feed(exception_frame(err))
    back = error_from_frame(frame)
    assert back is not None
    assert (back.code, back.message, back.extra) == (code, err.message, err.extra)


def test_error_from_recorded_exception_vector() -> None:
    vectors = json.loads(VECTORS.read_text())["vectors"]
    vector = next(
        v for v in vectors if v["name"] == "synthetic_converse_stream_in_stream_exception"
    )
    recorded = vector["botocore_parse"][-1]
    event, exception = Decoder().feed(bytes.fromhex(vector["hex"]))
    assert error_from_frame(event) is None
    err = error_from_frame(exception)
    assert err is not None
    assert err.code[0].lower() + err.code[1:] == recorded["code"]
    assert err.message == recorded["message"]
    assert err.status == AWS_ERROR_STATUS[err.code]


def test_error_message_type_frame(service: ServiceModel) -> None:
    data = encode_frame(
        {
            ":message-type": "error",
            ":error-code": "InternalFailure",
            ":error-message": "An internal error occurred",
        },
        b"",
    )
    with pytest.raises(BotocoreEventStreamError) as info:
        botocore_stream(service, "ConverseStream", data)
    (frame,) = Decoder().feed(data)
    err = error_from_frame(frame)
    assert err is not None
    assert (err.code, err.message) == (
        info.value.response["Error"]["Code"],
        info.value.response["Error"]["Message"],
    )


def test_exception_frame_with_non_json_payload() -> None:
    data = encode_frame(
        {":exception-type": "internalServerException", ":message-type": "exception"}, b"oops"
    )
    (frame,) = Decoder().feed(data)
    err = error_from_frame(frame)
    assert err is not None
    assert (err.code, err.message, err.is_fault) == ("InternalServerException", "oops", True)
