"""Every error spendgate raises on purpose, in one place.

    SpendgateError                 base; ``str(err)`` is a sentence a person can act on
    ├── ConfigError                bad settings, config file or CLI argument (CLI exit code 2)
    ├── DataError                  a bad data file: catalog, overrides, fixture, snapshot (exit 2)
    ├── EventStreamError           a malformed or corrupted application/vnd.amazon.eventstream frame
    ├── CounterUnavailable         the budget counters (Redis) cannot be reached
    ├── UpstreamError              (gateway/http1.py) no response from Bedrock: .kind connect|tls|…
    │   └── UpstreamTimeout        connect, first byte or idle-stream timeout
    └── AwsError                   anything reported on the Bedrock routes as an AWS-style error;
        │                          ``code`` is the AWS error type, ``status`` its HTTP status
        └── InvalidModelId         a model id that Bedrock would reject (ValidationException)

``AWS_ERROR_STATUS`` is the one map from AWS error types to HTTP status codes; the wire encoding
(``x-amzn-ErrorType`` header, JSON body, in-stream exception frames) lives in
``spendgate.bedrock.errors``.
"""

from __future__ import annotations

from typing import Any

# AWS error type -> HTTP status, as Bedrock's runtime API models them (bedrock-formats.md §4),
# plus the authentication errors AWS's front door returns before the service sees a request.
AWS_ERROR_STATUS: dict[str, int] = {
    "ValidationException": 400,
    "ServiceQuotaExceededException": 400,
    "ConflictException": 400,
    "SerializationException": 400,
    "UnknownOperationException": 404,
    "AccessDeniedException": 403,
    "InvalidSignatureException": 403,
    "IncompleteSignatureException": 403,
    "MissingAuthenticationTokenException": 403,
    "UnrecognizedClientException": 403,
    "ExpiredTokenException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "RequestEntityTooLargeException": 413,
    "UnsupportedMediaTypeException": 415,
    "ModelErrorException": 424,
    "ModelStreamErrorException": 424,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}


class SpendgateError(Exception):
    """Base of every deliberate spendgate error."""


class ConfigError(SpendgateError):
    """A setting, config file or command-line argument is invalid."""


class DataError(SpendgateError):
    """A data file (price catalog, overrides, fixture, rollup cache snapshot) is malformed."""


class EventStreamError(SpendgateError):
    """An event-stream frame is truncated, oversized or fails its CRC check."""


class CounterUnavailable(SpendgateError):
    """The budget counters' server (Redis) did not answer."""


class AwsError(SpendgateError):
    """An error with an AWS error type, reported to clients in Bedrock's own error shape."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    @property
    def status(self) -> int:
        return AWS_ERROR_STATUS.get(self.code, 400)

    @property
    def is_fault(self) -> bool:
        """True for server-side (5xx) errors."""
        return self.status >= 500

    def __repr__(self) -> str:
        return f"AwsError({self.code!r}, {self.message!r})"


class InvalidModelId(AwsError):
    """A model id or ARN that Bedrock would reject."""

    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message)
